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
    let (Some(relay), Some(url), Some(fingerprints), Some(certificate_hashes), true) =
        (relay, viewer_url, pins, viewer_pins, usable)
    else {
        return None;
    };
    Some(Some(MoqPlan {
        egress: broadcast::MoqConfig {
            relay,
            roots: args.roots.clone(),
            fingerprints,
            publish_key: None,
        },
        viewers: broadcast::MoqEndpoint {
            url,
            certificate_hashes,
            private_prefix: None,
        },
    }))
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
        let mut problems = Problems::default();
        let mut bad_pin = args("https://relay/");
        bad_pin.fingerprints = vec!["abc".to_owned()];
        assert!(moq(&bad_pin, &mut problems).is_none());
    }
}

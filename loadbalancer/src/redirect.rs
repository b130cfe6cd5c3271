//! The plain-HTTP side: everything is redirected to HTTPS, except the load balancer's own
//! `/healthz` and ACME HTTP-01 challenges (`/.well-known/acme-challenge/{token}`), which
//! are answered from a directory the operator's ACME client writes into.

use std::path::PathBuf;

use async_trait::async_trait;
use domain::paths::PathClass;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::metrics::LbMetrics;

/// Longest Host header accepted (a DNS name is at most 253 characters, plus a port).
const MAX_HOST_LEN: usize = 261;
/// Longest ACME token accepted (they are about 43 base64url characters).
const MAX_TOKEN_LEN: usize = 128;
const ACME_PREFIX: &str = "/.well-known/acme-challenge/";

/// The plain-HTTP application.
#[derive(Debug)]
pub struct Redirect {
    /// The HTTPS port clients are sent to (omitted from the URL when 443).
    pub https_port: u16,
    /// The host to redirect to when a request names none (HTTP/1.0).
    pub fallback_host: String,
    /// Where ACME challenge files are, if anywhere.
    pub acme_dir: Option<PathBuf>,
    /// Counts the redirects.
    pub metrics: LbMetrics,
}

#[async_trait]
impl ServeHttp for Redirect {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        let path = request.uri.path();
        if PathClass::of(path) == PathClass::Health {
            return plain(200, "ok\n");
        }
        if let Some(token) = path.strip_prefix(ACME_PREFIX) {
            return self.acme(token).await;
        }
        let host = match request.headers.get(http::header::HOST) {
            Some(value) => match value.to_str() {
                Ok(host) if is_sane_host(host) => host,
                _ => return plain(400, "bad Host header\n"),
            },
            None => self.fallback_host.as_str(),
        };
        let location = https_url(
            host,
            self.https_port,
            request.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        );
        self.metrics.redirect();
        Response::builder()
            .status(308)
            .header("location", location)
            .header("content-length", "0")
            .header("cache-control", "no-store")
            .body(Vec::new())
            .unwrap_or_else(|_| plain(500, "redirect failed\n"))
    }
}

impl Redirect {
    async fn acme(&self, token: &str) -> Response<Vec<u8>> {
        let Some(dir) = &self.acme_dir else {
            return plain(404, "not found\n");
        };
        let valid = !token.is_empty()
            && token.len() <= MAX_TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return plain(404, "not found\n");
        }
        match tokio::fs::read(dir.join(token)).await {
            Ok(body) => Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .header("content-length", body.len().to_string())
                .body(body)
                .unwrap_or_else(|_| plain(500, "read failed\n")),
            Err(_) => plain(404, "not found\n"),
        }
    }
}

/// Whether a Host value is a plausible `host[:port]`: a DNS name or an IP literal with an
/// optional port, nothing else.
pub fn is_sane_host(host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return false;
    }
    let (name, port) = split_host(host);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    port_ok && name_ok
}

/// `host[:port]` into the host and the port text.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        match host.rfind("]:") {
            Some(i) => (&host[..=i], Some(&host[i + 2..])),
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    }
}

/// The HTTPS URL for the same host (its port replaced) and path.
fn https_url(host: &str, https_port: u16, path_and_query: &str) -> String {
    let (name, _) = split_host(host);
    if https_port == 443 {
        format!("https://{name}{path_and_query}")
    } else {
        format!("https://{name}:{https_port}{path_and_query}")
    }
}

fn plain(status: u16, text: &'static str) -> Response<Vec<u8>> {
    let mut response = Response::new(text.as_bytes().to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(text.len()),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts() {
        for good in [
            "localhost",
            "localhost:8080",
            "streaming-cluster.test",
            "broadcast2.streaming-cluster.test:8443",
            "127.0.0.1",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(is_sane_host(good), "{good}");
        }
        for bad in [
            "",
            "a..b",
            "host:",
            "host:99999",
            "host:8080:1",
            "ho st",
            "evil.com/path",
            "[::1",
            "[nonsense]:80",
            "x@y",
            &"a".repeat(300),
            &format!("{}.test", "a".repeat(64)),
        ] {
            assert!(!is_sane_host(bad), "{bad}");
        }
    }

    #[test]
    fn redirects_keep_path_and_swap_port() {
        assert_eq!(
            https_url("localhost:8080", 8443, "/live/a/master.m3u8?x=1"),
            "https://localhost:8443/live/a/master.m3u8?x=1"
        );
        assert_eq!(https_url("example.org", 443, "/"), "https://example.org/");
        assert_eq!(https_url("[::1]:80", 8443, "/"), "https://[::1]:8443/");
    }

    proptest! {
        /// Whatever a client sends as Host, an accepted one yields a URL whose authority is
        /// that host name: no path, user info or scheme can be smuggled in.
        #[test]
        fn accepted_hosts_cannot_smuggle(host in "\\PC{0,40}") {
            if is_sane_host(&host) {
                let url = https_url(&host, 8443, "/p");
                let authority = url.strip_prefix("https://").and_then(|r| r.strip_suffix("/p"));
                prop_assert!(authority.is_some());
                let authority = authority.unwrap_or_default();
                prop_assert!(!authority.contains(['/', '@', '?', '#', ' ']));
            }
        }
    }
}

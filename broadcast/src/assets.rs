//! The web front end, embedded in the binary at build time: the player page (`/`), the
//! dashboard (`/dashboard`), the browser publisher (`/publish`) and their scripts and style
//! sheet under `/assets/`, hls.js and the `@noble` modules of the player's verification
//! worker included (vendored at pinned versions in `web/vendor/`; `build.rs` checks their
//! SHA-256 and refuses to build with an altered file). Nothing is read from disk at run
//! time, so a node serves the very front end it was built with.
//!
//! Every file is answered with a strong `ETag` (a hash of its bytes, computed once, on
//! first use) and `Cache-Control: no-cache`, so browsers revalidate and get a 304 until
//! the binary changes. The pages also carry a Content Security Policy that allows nothing
//! but this origin's own scripts, styles and requests, plus the `blob:` workers and media
//! URLs hls.js creates (its transmuxing worker and Media Source Extensions).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::response::Response;
use bytes::Bytes;
use domain::paths::{AssetName, PublicPath};
use http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::respond::{self, Ranges};
use crate::view::Document;
use crate::BroadcastError;

/// The bytes of a file under `web/`, embedded.
macro_rules! web_file {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $path)).as_slice()
    };
}

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const JAVASCRIPT: HeaderValue = HeaderValue::from_static("text/javascript; charset=utf-8");
const CSS: HeaderValue = HeaderValue::from_static("text/css; charset=utf-8");

/// What a node's pages are told beyond the embedded files: where viewers reach the
/// streams over MoQ (`/moq/v1/endpoint`), and the Content Security Policy that lets the
/// pages connect there.
#[derive(Debug)]
pub(crate) struct Pages {
    /// `/moq/v1/endpoint`, when there is one.
    pub(crate) moq_endpoint: Option<Document>,
    /// The pages' `Content-Security-Policy`.
    pub(crate) policy: HeaderValue,
}

impl Pages {
    /// The pages of a node whose viewers reach the streams over MoQ at `endpoint`, if any.
    pub(crate) fn new(endpoint: Option<&crate::MoqEndpoint>) -> Self {
        let Some(endpoint) = endpoint else {
            return Pages {
                moq_endpoint: None,
                policy: page_policy(None),
            };
        };
        let json = serde_json::to_vec(endpoint).unwrap_or_default();
        Pages {
            moq_endpoint: Some(Document::statement(Bytes::from(json), NO_CACHE)),
            policy: page_policy(Some(&endpoint.origin())),
        }
    }
}

/// The pages' Content Security Policy, with `connect_also` (an origin, `https://HOST:PORT`:
/// the MoQ relay's) beside `'self'` in `connect-src`. `blob:` for media and workers is what
/// hls.js needs (Media Source Extensions object URLs, its inline transmuxing worker);
/// `data:` images for small inline icons, `blob:` images for thumbnails (shown only from
/// the bytes the page verified itself, as object URLs); no inline script or style, no framing, no
/// `<base>`. An origin that would not make a valid header is left out.
pub(crate) fn page_policy(connect_also: Option<&str>) -> HeaderValue {
    let connect = match connect_also {
        Some(origin) if origin.starts_with("https://") && !origin.contains([';', ',', ' ']) => {
            format!("'self' {origin}")
        }
        _ => "'self'".to_owned(),
    };
    HeaderValue::try_from(format!(
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
         worker-src 'self' blob:; connect-src {connect}; style-src 'self'; \
         script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    ))
    .unwrap_or(HeaderValue::from_static("default-src 'none'"))
}
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
/// Revalidate every time: the `ETag` makes that a 304 until a new build.
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// A vendored `@noble` module (`web/vendor/noble/`), by file name: `build.rs` pins each
/// by its SHA-256 and writes this `match` (empty for a name it does not know, which the
/// tests below catch for every name in `domain::paths::NOBLE_MODULES`).
fn noble(name: &str) -> &'static [u8] {
    include!(concat!(env!("OUT_DIR"), "/noble.rs"))
}

/// One embedded file, ready to serve.
#[derive(Debug)]
struct File {
    document: Document,
    content_type: HeaderValue,
    /// An HTML page, which gets the page-only security headers.
    page: bool,
}

/// Every embedded file by its public path, hashed on first use.
static FILES: LazyLock<HashMap<PublicPath, File>> = LazyLock::new(|| {
    let asset = |name: AssetName| -> (&'static [u8], HeaderValue) {
        match name {
            AssetName::HlsJs => (web_file!("vendor/hls.js-1.7.4/hls.min.js"), JAVASCRIPT),
            AssetName::PlayerJs => (web_file!("src/player.js"), JAVASCRIPT),
            AssetName::DashboardJs => (web_file!("src/dashboard.js"), JAVASCRIPT),
            AssetName::StyleCss => (web_file!("src/style.css"), CSS),
            AssetName::VerifyJs => (web_file!("src/verify.js"), JAVASCRIPT),
            AssetName::VerifyWorkerJs => (web_file!("src/verify-worker.js"), JAVASCRIPT),
            AssetName::PublishJs => (web_file!("src/publish.js"), JAVASCRIPT),
            AssetName::MoqJs => (web_file!("src/moq.js"), JAVASCRIPT),
            AssetName::MoqPlayJs => (web_file!("src/moq-play.js"), JAVASCRIPT),
            AssetName::Noble(module) => (noble(module.file_name()), JAVASCRIPT),
        }
    };
    let pages = [
        (PublicPath::Index, web_file!("src/index.html")),
        (PublicPath::Dashboard, web_file!("src/dashboard.html")),
        (PublicPath::Publish, web_file!("src/publish.html")),
    ]
    .map(|(path, body)| (path, File::new(body, HTML, true)));
    let assets = AssetName::ALL.map(|name| {
        let (body, content_type) = asset(name);
        (
            PublicPath::Asset(name),
            File::new(body, content_type, false),
        )
    });
    pages.into_iter().chain(assets).collect()
});

impl File {
    fn new(body: &'static [u8], content_type: HeaderValue, page: bool) -> Self {
        let digest = Sha256::digest(body);
        // 128 bits of SHA-256: a strong validator; hex digits are always a valid header.
        let etag = HeaderValue::try_from(format!("\"{}\"", hex::encode(&digest[..16])))
            .unwrap_or(HeaderValue::from_static("\"0\""));
        File {
            document: Document {
                body: Bytes::from_static(body),
                etag,
                cache_control: NO_CACHE,
                signed: None,
            },
            content_type,
            page,
        }
    }
}

/// The paths served from here: the three pages and every asset.
pub(crate) fn paths() -> impl Iterator<Item = PublicPath> {
    [
        PublicPath::Index,
        PublicPath::Dashboard,
        PublicPath::Publish,
    ]
    .into_iter()
    .chain(AssetName::ALL.map(PublicPath::Asset))
}

/// The response to a GET (or HEAD) of an embedded file; 404 for any other path.
pub(crate) fn respond(
    path: &PublicPath,
    request: &HeaderMap,
    page_policy: &HeaderValue,
) -> Result<Response, BroadcastError> {
    let file = FILES.get(path).ok_or(BroadcastError::NotFound)?;
    let mut response = respond::document(
        &file.document,
        file.content_type.clone(),
        Ranges::No,
        request,
    )?;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if file.page {
        headers.insert(header::CONTENT_SECURITY_POLICY, page_policy.clone());
        headers.insert(header::REFERRER_POLICY, NO_REFERRER);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_a_file_and_nothing_else_does() {
        for path in paths() {
            let file = FILES.get(&path).expect("embedded");
            assert!(!file.document.body.is_empty(), "{path}");
            let page = matches!(
                path,
                PublicPath::Index | PublicPath::Dashboard | PublicPath::Publish
            );
            assert_eq!(file.page, page, "{path}");
        }
        assert_eq!(FILES.len(), paths().count());
        assert!(respond(&PublicPath::Health, &HeaderMap::new(), &page_policy(None)).is_err());
    }

    #[test]
    fn the_pages_may_connect_to_the_moq_relay_and_nowhere_else() {
        let plain = page_policy(None);
        let plain = plain.to_str().expect("ascii");
        assert!(plain.contains("connect-src 'self';"), "{plain}");
        let relay = page_policy(Some("https://relay.example:4443"));
        let relay = relay.to_str().expect("ascii");
        assert!(
            relay.contains("connect-src 'self' https://relay.example:4443;"),
            "{relay}"
        );
        for bad in ["http://relay", "https://a; script-src *", "https://a b"] {
            let policy = page_policy(Some(bad));
            assert_eq!(policy.to_str().expect("ascii"), plain, "{bad}");
        }
    }

    #[test]
    fn etags_are_strong_and_distinct() {
        let tags: std::collections::HashSet<_> =
            FILES.values().map(|f| f.document.etag.clone()).collect();
        assert_eq!(tags.len(), FILES.len());
        for tag in tags {
            let tag = tag.to_str().expect("ascii");
            assert!(tag.starts_with('"') && !tag.starts_with("W/"), "{tag}");
            assert_eq!(tag.len(), 34, "{tag}");
        }
    }
}

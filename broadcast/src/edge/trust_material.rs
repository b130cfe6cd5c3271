//! What an edge serves viewers to rebuild its trust from the root alone (issue 31):
//!
//! - `/trust/v1/root.pub`: the root key file this edge pins (`RootPublicKey::file_bytes`),
//!   `no-cache`, so an operator who replaces the root is seen at the next page load;
//! - `/trust/v1/bundle`: what the trust store admitted (`TrustStore::bundle`: the
//!   certificates and earliest revocations, each root-signed; the whole unsigned, so an
//!   edge can withhold a revocation but never forge one), rendered again on every admitted
//!   certificate and revocation, never per request, and kept by caches for 10 s with an
//!   `ETag` (a viewer fetches it again once a minute while it watches);
//! - `/trust/v1/provenance-anchors`: the root's anchors of other C2PA signers' CAs, as the
//!   key directory keeps them (PEM; empty when there are none), for viewers of streams
//!   signed elsewhere; each is root-signed, so this edge cannot add one.
//!
//! They are routes the edge adds beside the node's public ones, like the push API: the
//! trust store is the edge's.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use certs::c2pa::ProvenanceAnchor;
use certs::signing::{RootPublicKey, TrustStore};
use domain::paths::PublicPath;
use http::{HeaderMap, HeaderValue};

use crate::respond::{self, Ranges, STATEMENT_TYPE};
use crate::view::Document;
use crate::BroadcastError;

/// `Cache-Control` of the root key file: asked again each time (revalidated by `ETag`).
const ROOT_CACHE_CONTROL: HeaderValue = HeaderValue::from_static("no-cache");
/// `Cache-Control` of the bundle: a revocation reaches viewers within this, plus the
/// minute a watching player waits between two fetches.
const BUNDLE_CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=10");

/// `Content-Type` of the provenance anchors.
const PEM_TYPE: HeaderValue = HeaderValue::from_static("application/x-pem-file");

/// The documents, the bundle swapped whole when the store changes.
#[derive(Debug)]
pub(crate) struct TrustMaterial {
    root: Document,
    bundle: ArcSwap<Document>,
    anchors: Document,
}

impl TrustMaterial {
    /// The root's key file, `store`'s bundle and the provenance `anchors`.
    pub(crate) fn new(
        root: &RootPublicKey,
        store: &TrustStore,
        anchors: &[ProvenanceAnchor],
    ) -> Self {
        let anchors = Bytes::from(certs::c2pa::anchors_pem(anchors));
        TrustMaterial {
            root: Document::statement(Bytes::from(root.file_bytes()), ROOT_CACHE_CONTROL),
            bundle: ArcSwap::from_pointee(bundle_of(store)),
            anchors: Document::statement(anchors, ROOT_CACHE_CONTROL),
        }
    }

    /// Renders the bundle again after `store` admitted or revoked something.
    pub(crate) fn update(&self, store: &TrustStore) {
        self.bundle.store(Arc::new(bundle_of(store)));
    }
}

fn bundle_of(store: &TrustStore) -> Document {
    Document::statement(Bytes::from(store.bundle().encode()), BUNDLE_CACHE_CONTROL)
}

/// The routes of `/trust/v1/root.pub`, `/trust/v1/bundle` and
/// `/trust/v1/provenance-anchors`.
pub(crate) fn routes(material: Arc<TrustMaterial>) -> Router {
    Router::new()
        .route(&PublicPath::TrustRoot.to_string(), get(root))
        .route(&PublicPath::TrustBundle.to_string(), get(bundle))
        .route(&PublicPath::ProvenanceAnchors.to_string(), get(anchors))
        .with_state(material)
}

async fn anchors(
    State(material): State<Arc<TrustMaterial>>,
    headers: HeaderMap,
) -> Result<Response, BroadcastError> {
    respond::document(&material.anchors, PEM_TYPE, Ranges::No, &headers)
}

async fn root(
    State(material): State<Arc<TrustMaterial>>,
    headers: HeaderMap,
) -> Result<Response, BroadcastError> {
    respond::document(&material.root, STATEMENT_TYPE, Ranges::No, &headers)
}

async fn bundle(
    State(material): State<Arc<TrustMaterial>>,
    headers: HeaderMap,
) -> Result<Response, BroadcastError> {
    let bundle = material.bundle.load();
    respond::document(&bundle, STATEMENT_TYPE, Ranges::No, &headers)
}

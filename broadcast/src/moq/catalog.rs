//! The broadcast's catalog (`catalog.json`): which renditions its tracks carry and how to
//! decode them, in the shape of the `hang` catalog that moq-relay's own players read
//! (`video.renditions`, a CMAF container with its init segment), with a `sealcast` section
//! beside it for what only a verifying player needs: each rendition's statements track
//! and the signed statement of its init segment.
//!
//! Sans-IO: a snapshot in, bytes out. The catalog changes when a rendition appears, is
//! dropped, or its init segment or publish session changes (a publisher's reconnect), and
//! is sent again then.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use crate::view::StreamView;

/// The catalog track's name, as `hang` names it.
pub(crate) const TRACK: &str = "catalog.json";

/// The name of the track carrying a rendition's statements, beside its media track.
pub(crate) fn statements_track(rendition: &str) -> String {
    format!("{rendition}{STATEMENTS_SUFFIX}")
}

/// What names a statements track.
const STATEMENTS_SUFFIX: &str = ".sig";

#[derive(Serialize)]
struct Catalog {
    video: Video,
    sealcast: Sealcast,
}

#[derive(Serialize)]
struct Video {
    renditions: BTreeMap<String, VideoConfig>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoConfig {
    /// The video codec alone (WebCodecs registry), as `hang` wants it.
    codec: String,
    coded_width: u32,
    coded_height: u32,
    bitrate: u64,
    framerate: f64,
    container: Container,
}

#[derive(Serialize)]
struct Container {
    kind: &'static str,
    init: String,
}

#[derive(Serialize)]
struct Sealcast {
    /// Bumped when the meaning of anything here changes.
    version: u32,
    renditions: BTreeMap<String, SealcastRendition>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SealcastRendition {
    /// Every codec of the rendition's fragments (RFC 6381), audio included: a rendition
    /// is one CMAF track set, video and audio muxed, exactly the bytes LL-HLS serves.
    codecs: String,
    /// The peak bitrate the master playlist gives it (`BANDWIDTH`).
    bandwidth: u64,
    /// The track with the statements of its groups and objects.
    statements: String,
    /// `init.mp4.sig`: the signed statement of the init segment, base64.
    init_statement: Option<String>,
    /// The publish session whose init segment this is (16 hex digits, as every statement
    /// of its parts names it): a player holding another session's init segment reads the
    /// catalog again before it feeds a part of this one, and passes over a part of a
    /// session the catalog no longer describes. A hint like the rest of the catalog: what
    /// is fed is checked against its statement whatever this says.
    session: String,
}

/// What [`render`] reads of `view`, cheap to compare: each rendition MoQ can carry, with
/// its init segment's and init statement's `ETag`s and what its summary says. The catalog
/// is rendered again only when this changes, not at every part.
pub(crate) fn inputs(view: &StreamView) -> Vec<CatalogInput> {
    view.summary
        .renditions
        .iter()
        .filter_map(|summary| {
            let rendition = view.renditions.get(&summary.name)?;
            let (Some(init), Some(_)) = (&rendition.init, &rendition.ll) else {
                return None;
            };
            Some(CatalogInput {
                summary: format!(
                    "{} {} {}x{} {}",
                    summary.name, summary.codecs, summary.width, summary.height, summary.frame_rate
                ),
                bandwidth: summary.bandwidth,
                init: init.etag.clone(),
                init_statement: init.signed.as_ref().map(|s| s.etag.clone()),
                session: rendition.session,
            })
        })
        .collect()
}

/// One rendition's part of [`inputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogInput {
    summary: String,
    bandwidth: u64,
    init: http::HeaderValue,
    init_statement: Option<http::HeaderValue>,
    session: domain::SessionId,
}

/// The catalog of `view`: its CMAF renditions with parts (the only ones MoQ can carry),
/// or `None` while it has none.
pub(crate) fn render(view: &StreamView) -> Option<Bytes> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut video = BTreeMap::new();
    let mut sealcast = BTreeMap::new();
    for summary in &view.summary.renditions {
        let Some(rendition) = view.renditions.get(&summary.name) else {
            continue;
        };
        let (Some(init), Some(_)) = (&rendition.init, &rendition.ll) else {
            continue;
        };
        let name = summary.name.to_string();
        let codec = summary
            .codecs
            .split(',')
            .map(str::trim)
            .find(|c| !c.starts_with("mp4a") && !c.starts_with("opus"))
            .unwrap_or_default()
            .to_owned();
        video.insert(
            name.clone(),
            VideoConfig {
                codec,
                coded_width: summary.width,
                coded_height: summary.height,
                bitrate: summary.bandwidth,
                framerate: summary.frame_rate,
                container: Container {
                    kind: "cmaf",
                    init: b64.encode(&init.body),
                },
            },
        );
        sealcast.insert(
            name.clone(),
            SealcastRendition {
                codecs: summary.codecs.clone(),
                bandwidth: summary.bandwidth,
                statements: statements_track(&name),
                init_statement: init.signed.as_ref().map(|s| b64.encode(&s.body)),
                session: rendition.session.to_string(),
            },
        );
    }
    if video.is_empty() {
        return None;
    }
    let catalog = Catalog {
        video: Video { renditions: video },
        sealcast: Sealcast {
            version: 1,
            renditions: sealcast,
        },
    };
    serde_json::to_vec(&catalog).ok().map(Bytes::from)
}

//! The public URL layout of the brief, built and parsed in one place:
//!
//! | path | what |
//! |---|---|
//! | `/` | the web player |
//! | `/dashboard` | the cluster dashboard |
//! | `/publish` | the browser publisher (WHIP from a tab) |
//! | `/assets/{file}` | the pages' scripts and style sheet, a fixed set ([`AssetName`]) |
//! | `/live/{stream}/master.m3u8` | master playlist |
//! | `/live/{stream}/{rendition}/index.m3u8` | live media playlist |
//! | `/live/{stream}/{rendition}/init.mp4` | the CMAF init segment of a rendition |
//! | `/live/{stream}/{rendition}/{seq}.m4s` | a CMAF segment |
//! | `/live/{stream}/{rendition}/{seq}.{part}.m4s` | an LL-HLS part of a CMAF segment |
//! | `/live/{stream}/{rendition}/{seq}.ts` | an MPEG-TS segment |
//! | `/live/{stream}/{rendition}/{file}.sig` | the signed statement of a segment, part or `init.mp4` |
//! | `/live/{stream}/{rendition}/{seq}.partkey` | the part-key delegation covering segment `seq` |
//! | `/live/{stream}/thumbnail.jpg` | the stream's latest verified thumbnail |
//! | `/live/{stream}/thumbnail.jpg.sig` | its signed statement |
//! | `/vod/{stream}/{recording}/master.m3u8` | master playlist of a finished recording |
//! | `/vod/{stream}/{recording}/{rendition}/index.m3u8` | its media playlist (VOD) |
//! | `/vod/{stream}/{recording}/{rendition}/init.mp4` | its init segment (CMAF) |
//! | `/vod/{stream}/{recording}/{rendition}/{seq}.m4s` | one of its segments (CMAF) |
//! | `/vod/{stream}/{recording}/{rendition}/{seq}.ts` | one of its segments (MPEG-TS) |
//! | `/vod/{stream}/{recording}/{rendition}/{file}.sig` | a segment's or `init.mp4`'s signed statement |
//! | `/vod/{stream}/{recording}/thumbnail.jpg` | the recording's thumbnail (and `.sig`) |
//! | `/trust/v1/root.pub` | the cluster's root public key (the file edges pin) |
//! | `/trust/v1/bundle` | the certificates and revocations the root signed, for viewers |
//! | `/trust/v1/provenance-anchors` | the root's anchors of other C2PA signers' CAs (PEM) |
//! | `/api/v1/streams` | live streams as JSON |
//! | `/api/v1/recordings` | finished recordings as JSON |
//! | `/healthz`, `/readyz`, `/metrics` | liveness, readiness, Prometheus text |
//! | `/whip/{stream}` | WHIP (RFC 9725): POST an SDP offer, the stream key as a Bearer token |
//! | `/whip/{stream}/{node}/{session}` | a WHIP session (DELETE ends it): the ingest `{node}` holds it |
//!
//! Long because it is the layout's one parser and one printer side by side, so that a path
//! and its spelling cannot drift apart.
//!
//! `{recording}` is the id of the publish session that started the recording, spelled as
//! [`SessionId`] displays (16 lowercase hex digits) and nothing else. A WHIP `{session}` is
//! a [`WhipSessionId`] (32 lowercase hex digits); `{node}` the ingest's [`NodeId`], so that
//! the load balancer sends a session's requests back to the ingest that has it.

use std::fmt;

use crate::{DomainError, NodeId, RenditionName, SessionId, StreamName};

/// A path of the public URL layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublicPath {
    /// `/`: the web player.
    Index,
    /// `/dashboard`: the cluster dashboard.
    Dashboard,
    /// `/publish`: the browser publisher page.
    Publish,
    /// `/assets/{file}`: a script or style sheet of the pages.
    Asset(AssetName),
    /// `/live/{stream}/master.m3u8`
    Master(StreamName),
    /// `/live/{stream}/{rendition}/index.m3u8`
    Media(StreamName, RenditionName),
    /// `/live/{stream}/dvr.m3u8`: the master playlist of the stream's time-shift window
    /// (its last minutes, seekable), listing each rendition's [`PublicPath::DvrMedia`].
    DvrMaster(StreamName),
    /// `/live/{stream}/{rendition}/dvr.m3u8`: a rendition's time-shift window, whole
    /// segments named as in the live tree (`{seq}.m4s`, `{seq}.ts`).
    DvrMedia(StreamName, RenditionName),
    /// `/live/{stream}/{rendition}/{seq}.ts`
    Segment(StreamName, RenditionName, u64),
    /// `/live/{stream}/{rendition}/init.mp4`
    Init(StreamName, RenditionName),
    /// `/live/{stream}/{rendition}/{seq}.m4s`
    Fragment(StreamName, RenditionName, u64),
    /// `/live/{stream}/{rendition}/{seq}.{part}.m4s`
    Part(StreamName, RenditionName, u64, u32),
    /// `/vod/{stream}/{recording}/master.m3u8`
    VodMaster(StreamName, SessionId),
    /// `/vod/{stream}/{recording}/{rendition}/index.m3u8`
    VodMedia(StreamName, SessionId, RenditionName),
    /// `/vod/{stream}/{recording}/{rendition}/{seq}.ts`
    VodSegment(StreamName, SessionId, RenditionName, u64),
    /// `/vod/{stream}/{recording}/{rendition}/init.mp4`
    VodInit(StreamName, SessionId, RenditionName),
    /// `/vod/{stream}/{recording}/{rendition}/{seq}.m4s`
    VodFragment(StreamName, SessionId, RenditionName, u64),
    /// `/live/{stream}/{rendition}/{file}.sig`: the signed statement of a live media file,
    /// the exact envelope the ingest signed and the node verified.
    Signature(StreamName, RenditionName, MediaFile),
    /// `/vod/{stream}/{recording}/{rendition}/{file}.sig`: a recorded media file's signed
    /// statement (recordings have no parts).
    VodSignature(StreamName, SessionId, RenditionName, MediaFile),
    /// `/live/{stream}/{rendition}/{seq}.partkey`: the signed delegation of the key that
    /// signs the parts of segment `seq`.
    PartKey(StreamName, RenditionName, u64),
    /// `/live/{stream}/thumbnail.jpg`: the stream's latest verified thumbnail.
    Thumbnail(StreamName),
    /// `/live/{stream}/thumbnail.jpg.sig`: its signed statement.
    ThumbnailSignature(StreamName),
    /// `/vod/{stream}/{recording}/thumbnail.jpg`: a recording's thumbnail.
    VodThumbnail(StreamName, SessionId),
    /// `/vod/{stream}/{recording}/thumbnail.jpg.sig`: its signed statement.
    VodThumbnailSignature(StreamName, SessionId),
    /// `/trust/v1/root.pub`: the root public key file.
    TrustRoot,
    /// `/trust/v1/bundle`: the node's trust bundle (root-signed certificates and
    /// revocations).
    TrustBundle,
    /// `/trust/v1/provenance-anchors`: the root's anchors of the CAs of C2PA signers that
    /// are not the cluster's (docs/provenance.md).
    ProvenanceAnchors,
    /// `/moq/v1/endpoint`: where viewers reach the cluster over Media over QUIC (the relay's
    /// URL and, for a self-signed relay, its certificate's hashes), as JSON; 404 without.
    MoqEndpoint,
    /// `/live/{stream}/moq-grant`: a private stream's viewer's grant to read it over MoQ,
    /// minted for a playback token the node checked (as JSON; a relay tier's gates take it).
    MoqGrant(StreamName),
    /// `/api/v1/streams`
    Streams,
    /// `/api/v1/recordings`
    Recordings,
    /// `/healthz`
    Health,
    /// `/readyz`: 200 once a broadcast node holds the live window, 503 before.
    Readiness,
    /// `/metrics`
    Metrics,
    /// `/whip/{stream}`: where a WHIP publisher posts its offer (served by an ingest, never
    /// by a broadcast node).
    WhipEndpoint(StreamName),
    /// `/whip/{stream}/{node}/{session}`: one WHIP session, on ingest `{node}`.
    WhipSession(StreamName, NodeId, WhipSessionId),
}

/// One WHIP session: 128 random bits, spelled as 32 lowercase hex digits in its URL (and
/// nothing else parses), so a session's URL cannot be guessed from another's.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WhipSessionId(pub u128);

impl fmt::Display for WhipSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for WhipSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WhipSessionId({self})")
    }
}

impl std::str::FromStr for WhipSessionId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if s.len() != 32 || !s.bytes().all(lower_hex) {
            return Err(DomainError::InvalidSessionId);
        }
        u128::from_str_radix(s, 16)
            .map(WhipSessionId)
            .map_err(|_| DomainError::InvalidSessionId)
    }
}

/// The files under `/assets/`: a closed set, so an asset path can never name anything
/// else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetName {
    /// `hls.min.js`: hls.js, the pinned release vendored in `web/vendor/`.
    HlsJs,
    /// `player.js`: the player page's script.
    PlayerJs,
    /// `dashboard.js`: the dashboard's script.
    DashboardJs,
    /// `style.css`: the style sheet of both pages.
    StyleCss,
    /// `verify.js`: the player's own verification of every fragment (a module).
    VerifyJs,
    /// `verify-worker.js`: the module worker that verifies with the vendored library where
    /// the browser has no native ML-DSA.
    VerifyWorkerJs,
    /// `publish.js`: the browser publisher's script (WHIP).
    PublishJs,
    /// `moq.js`: the player's moq-lite subscriber over WebTransport (a module).
    MoqJs,
    /// `moq-play.js`: the player's playback over MoQ (a module): catalog, verification,
    /// Media Source Extensions.
    MoqPlayJs,
    /// One of [`NOBLE_MODULES`]: the vendored `@noble` libraries the worker imports.
    Noble(NobleModule),
}

/// The modules of `@noble/post-quantum` 0.7.1, `@noble/hashes` and `@noble/curves` 2.4.0
/// vendored flat in `web/vendor/noble/` (its `vendor.py` says how), by file name.
pub const NOBLE_MODULES: [&str; 18] = [
    "noble-curves-abstract-curve.js",
    "noble-curves-abstract-edwards.js",
    "noble-curves-abstract-fft.js",
    "noble-curves-abstract-frost.js",
    "noble-curves-abstract-hash-to-curve.js",
    "noble-curves-abstract-modular.js",
    "noble-curves-abstract-montgomery.js",
    "noble-curves-abstract-oprf.js",
    "noble-curves-ed25519.js",
    "noble-curves-utils.js",
    "noble-hashes-_md.js",
    "noble-hashes-_u64.js",
    "noble-hashes-sha2.js",
    "noble-hashes-sha3.js",
    "noble-hashes-utils.js",
    "noble-post-quantum-_crystals.js",
    "noble-post-quantum-ml-dsa.js",
    "noble-post-quantum-utils.js",
];

/// A vendored `@noble` module: an index into [`NOBLE_MODULES`], valid by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NobleModule(u8);

impl NobleModule {
    /// Its file name, as in the URL and in `web/vendor/noble/`.
    pub fn file_name(self) -> &'static str {
        NOBLE_MODULES[usize::from(self.0)]
    }
}

impl AssetName {
    /// Every asset.
    pub const ALL: [AssetName; 9 + NOBLE_MODULES.len()] = {
        let mut all = [AssetName::HlsJs; 9 + NOBLE_MODULES.len()];
        all[1] = AssetName::PlayerJs;
        all[2] = AssetName::DashboardJs;
        all[3] = AssetName::StyleCss;
        all[4] = AssetName::VerifyJs;
        all[5] = AssetName::VerifyWorkerJs;
        all[6] = AssetName::PublishJs;
        all[7] = AssetName::MoqJs;
        all[8] = AssetName::MoqPlayJs;
        let mut i = 0;
        while i < NOBLE_MODULES.len() {
            // NOBLE_MODULES has 18 entries: every index fits a u8.
            all[9 + i] = AssetName::Noble(NobleModule(i as u8));
            i += 1;
        }
        all
    };

    /// The file name, as in the URL.
    pub fn file_name(self) -> &'static str {
        match self {
            AssetName::HlsJs => "hls.min.js",
            AssetName::PlayerJs => "player.js",
            AssetName::DashboardJs => "dashboard.js",
            AssetName::StyleCss => "style.css",
            AssetName::VerifyJs => "verify.js",
            AssetName::VerifyWorkerJs => "verify-worker.js",
            AssetName::PublishJs => "publish.js",
            AssetName::MoqJs => "moq.js",
            AssetName::MoqPlayJs => "moq-play.js",
            AssetName::Noble(module) => module.file_name(),
        }
    }

    /// The asset with this file name, if there is one.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.file_name() == name)
    }
}

impl fmt::Display for AssetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

impl PublicPath {
    /// Parses an absolute request path (no query string). Anything that is not exactly one
    /// of the layout's paths, with valid names, is `None` — so `..`, doubled slashes and
    /// percent-encoded tricks never reach a handler.
    pub fn parse(path: &str) -> Option<Self> {
        if path == "/" {
            return Some(Self::Index);
        }
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["healthz"] => Some(Self::Health),
            ["readyz"] => Some(Self::Readiness),
            ["metrics"] => Some(Self::Metrics),
            ["dashboard"] => Some(Self::Dashboard),
            ["publish"] => Some(Self::Publish),
            ["whip", stream] => Some(Self::WhipEndpoint(StreamName::new(*stream).ok()?)),
            ["whip", stream, node, session] => Some(Self::WhipSession(
                StreamName::new(*stream).ok()?,
                NodeId::new(*node).ok()?,
                session.parse().ok()?,
            )),
            ["assets", file] => AssetName::from_file_name(file).map(Self::Asset),
            ["api", "v1", "streams"] => Some(Self::Streams),
            ["api", "v1", "recordings"] => Some(Self::Recordings),
            ["trust", "v1", "root.pub"] => Some(Self::TrustRoot),
            ["trust", "v1", "bundle"] => Some(Self::TrustBundle),
            ["trust", "v1", "provenance-anchors"] => Some(Self::ProvenanceAnchors),
            ["moq", "v1", "endpoint"] => Some(Self::MoqEndpoint),
            ["live", stream, "master.m3u8"] => Some(Self::Master(StreamName::new(*stream).ok()?)),
            ["live", stream, "dvr.m3u8"] => Some(Self::DvrMaster(StreamName::new(*stream).ok()?)),
            ["live", stream, rendition, "dvr.m3u8"] => Some(Self::DvrMedia(
                StreamName::new(*stream).ok()?,
                RenditionName::new(*rendition).ok()?,
            )),
            ["live", stream, MOQ_GRANT_FILE] => {
                Some(Self::MoqGrant(StreamName::new(*stream).ok()?))
            }
            ["live", stream, THUMBNAIL_FILE] => {
                Some(Self::Thumbnail(StreamName::new(*stream).ok()?))
            }
            ["live", stream, THUMBNAIL_STATEMENT_FILE] => {
                Some(Self::ThumbnailSignature(StreamName::new(*stream).ok()?))
            }
            ["vod", stream, recording, THUMBNAIL_FILE] => Some(Self::VodThumbnail(
                StreamName::new(*stream).ok()?,
                recording.parse().ok()?,
            )),
            ["vod", stream, recording, THUMBNAIL_STATEMENT_FILE] => {
                Some(Self::VodThumbnailSignature(
                    StreamName::new(*stream).ok()?,
                    recording.parse().ok()?,
                ))
            }
            ["live", stream, rendition, "index.m3u8"] => Some(Self::Media(
                StreamName::new(*stream).ok()?,
                RenditionName::new(*rendition).ok()?,
            )),
            ["live", stream, rendition, file] => {
                let stream = StreamName::new(*stream).ok()?;
                let rendition = RenditionName::new(*rendition).ok()?;
                if let Some(media) = file.strip_suffix(".sig") {
                    return Some(Self::Signature(stream, rendition, media_file(media)?));
                }
                if let Some(seq) = file.strip_suffix(".partkey") {
                    return Some(Self::PartKey(stream, rendition, decimal(seq)?));
                }
                Some(match media_file(file)? {
                    MediaFile::Ts(n) => Self::Segment(stream, rendition, n),
                    MediaFile::Init => Self::Init(stream, rendition),
                    MediaFile::Fragment(n) => Self::Fragment(stream, rendition, n),
                    MediaFile::Part(n, p) => Self::Part(stream, rendition, n, p),
                })
            }
            ["vod", stream, recording, "master.m3u8"] => Some(Self::VodMaster(
                StreamName::new(*stream).ok()?,
                recording.parse().ok()?,
            )),
            ["vod", stream, recording, rendition, "index.m3u8"] => Some(Self::VodMedia(
                StreamName::new(*stream).ok()?,
                recording.parse().ok()?,
                RenditionName::new(*rendition).ok()?,
            )),
            ["vod", stream, recording, rendition, file] => {
                let stream = StreamName::new(*stream).ok()?;
                let recording = recording.parse().ok()?;
                let rendition = RenditionName::new(*rendition).ok()?;
                if let Some(media) = file.strip_suffix(".sig") {
                    return match media_file(media)? {
                        MediaFile::Part(..) => None,
                        media => Some(Self::VodSignature(stream, recording, rendition, media)),
                    };
                }
                Some(match media_file(file)? {
                    MediaFile::Ts(n) => Self::VodSegment(stream, recording, rendition, n),
                    MediaFile::Init => Self::VodInit(stream, recording, rendition),
                    MediaFile::Fragment(n) => Self::VodFragment(stream, recording, rendition, n),
                    MediaFile::Part(..) => return None,
                })
            }
            _ => None,
        }
    }
}

/// How a front door (the load balancer) treats a request path: decided from the path
/// alone, without allocating, and in agreement with [`PublicPath::parse`] (a property test
/// checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// `/healthz`: the front door answers for itself.
    Health,
    /// `/metrics` and the internal push API (`/internal`, `/internal/...`): for the
    /// cluster's own network, never proxied to viewers.
    NodePrivate,
    /// A live master or media playlist ([`PublicPath::Master`], [`PublicPath::Media`]).
    LivePlaylist,
    /// `/whip` and everything under it: for an ingest, never a broadcast node (the load
    /// balancer parses it in full with [`PublicPath::parse`] to pick the ingest).
    Whip,
    /// Anything else: proxied as it is, for the node to parse in full.
    Other,
}

impl PathClass {
    /// The class of an absolute request path (no query string).
    pub fn of(path: &str) -> Self {
        match path {
            "/healthz" => return Self::Health,
            "/metrics" | "/internal" => return Self::NodePrivate,
            _ => {}
        }
        if path.starts_with(crate::push_protocol::INTERNAL_PREFIX) {
            return Self::NodePrivate;
        }
        if path == "/whip" || path.starts_with("/whip/") {
            return Self::Whip;
        }
        let Some(rest) = path.strip_prefix("/live/") else {
            return Self::Other;
        };
        let mut parts = rest.split('/');
        let live_playlist = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(stream), Some("master.m3u8"), None, None) => crate::ids::is_name(stream),
            (Some(stream), Some(rendition), Some("index.m3u8"), None) => {
                crate::ids::is_name(stream) && crate::ids::is_name(rendition)
            }
            _ => false,
        };
        if live_playlist {
            Self::LivePlaylist
        } else {
            Self::Other
        }
    }
}

/// Which stream's tree a request path is under, by its shape alone: everything under
/// `/live/{stream}/` and `/vod/{stream}/`, whatever follows (playlists, media, sidecars and
/// whatever the layout gains later). What a private stream's token is checked against,
/// on the nodes and at the load balancer, so that no resource of a private stream can be
/// reached by a path its handler parses but this does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamTree {
    /// `/live/{stream}/…`
    Live(StreamName),
    /// `/vod/{stream}/…`, with the recording's id when the path names a valid one.
    Recording(StreamName, Option<SessionId>),
}

impl StreamTree {
    /// The tree of an absolute request path (no query string), if it is under one.
    pub fn of(path: &str) -> Option<Self> {
        if let Some(rest) = path.strip_prefix("/live/") {
            let stream = rest.split('/').next()?;
            return StreamName::new(stream).ok().map(Self::Live);
        }
        let rest = path.strip_prefix("/vod/")?;
        let mut parts = rest.split('/');
        let stream = StreamName::new(parts.next()?).ok()?;
        let id = parts.next().and_then(|id| id.parse().ok());
        Some(Self::Recording(stream, id))
    }

    /// The stream.
    pub fn stream(&self) -> &StreamName {
        match self {
            Self::Live(stream) | Self::Recording(stream, _) => stream,
        }
    }
}

/// The path prefixes of everything served of `stream`: its live tree and its recordings'
/// (`/live/{stream}/`, `/vod/{stream}/`), what a cache in front is told to drop when the
/// stream turns private.
pub fn stream_tree_prefixes(stream: &StreamName) -> [String; 2] {
    [format!("/live/{stream}/"), format!("/vod/{stream}/")]
}

/// The path prefix of one recording (`/vod/{stream}/{recording}/`).
pub fn recording_tree_prefix(stream: &StreamName, recording: &SessionId) -> String {
    format!("/vod/{stream}/{recording}/")
}

/// A thumbnail's file name, in a stream's live tree and in a recording's folder.
pub const THUMBNAIL_FILE: &str = "thumbnail.jpg";
/// Where under a live stream's tree a viewer asks for a MoQ grant.
pub const MOQ_GRANT_FILE: &str = "moq-grant";
/// The file name of a thumbnail's signed statement.
pub const THUMBNAIL_STATEMENT_FILE: &str = "thumbnail.jpg.sig";

/// The query parameter of a private stream's playback token (`?token=…`), carried on every
/// URL of its tree.
pub const TOKEN_PARAMETER: &str = "token";

/// What a redacted query value reads as.
pub const REDACTED: &str = "<redacted>";

/// `url` (a request target `path?query`, or a whole URL) with the value of every query
/// parameter named like a token replaced by [`REDACTED`], for anything that writes a URL
/// where people read it (logs, error messages): a playback token in a log is as good as
/// the link it came from. Over-redacts rather than under: every parameter whose name
/// contains `token` in any case, and `;`-separated parameters too.
pub fn redact_tokens(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((head, rest)) = url.split_once('?') else {
        return url.into();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (rest, None),
    };
    let secret = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        name.to_ascii_lowercase().contains(TOKEN_PARAMETER) && pair.contains('=')
    };
    if !query.split(['&', ';']).any(secret) {
        return url.into();
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    out.push('?');
    let mut rest = query;
    loop {
        let end = rest.find(['&', ';']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((name, _)) if secret(pair) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
        if end == rest.len() {
            break;
        }
        out.push_str(&rest[end..=end]);
        rest = &rest[end + 1..];
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out.into()
}

/// A media file name of a rendition, as a sidecar path names the file it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaFile {
    /// `{seq}.ts`
    Ts(u64),
    /// `init.mp4`
    Init,
    /// `{seq}.m4s`
    Fragment(u64),
    /// `{seq}.{part}.m4s`
    Part(u64, u32),
}

impl fmt::Display for MediaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ts(n) => write!(f, "{n}.ts"),
            Self::Init => f.write_str("init.mp4"),
            Self::Fragment(n) => write!(f, "{n}.m4s"),
            Self::Part(n, p) => write!(f, "{n}.{p}.m4s"),
        }
    }
}

/// Parses a media file name; numbers are plain decimal (a sequence number at most 20
/// digits and within u64, a part index within u32).
fn media_file(file: &str) -> Option<MediaFile> {
    if file == "init.mp4" {
        return Some(MediaFile::Init);
    }
    if let Some(seq) = file.strip_suffix(".ts") {
        return decimal(seq).map(MediaFile::Ts);
    }
    let stem = file.strip_suffix(".m4s")?;
    match stem.split_once('.') {
        None => decimal(stem).map(MediaFile::Fragment),
        Some((seq, part)) => Some(MediaFile::Part(
            decimal(seq)?,
            u32::try_from(decimal(part)?).ok()?,
        )),
    }
}

/// Plain decimal digits, at most 20, fitting a u64.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 20 {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for PublicPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index => f.write_str("/"),
            Self::Dashboard => f.write_str("/dashboard"),
            Self::Publish => f.write_str("/publish"),
            Self::Asset(a) => write!(f, "/assets/{a}"),
            Self::Master(s) => write!(f, "/live/{s}/master.m3u8"),
            Self::Media(s, r) => write!(f, "/live/{s}/{r}/index.m3u8"),
            Self::DvrMaster(s) => write!(f, "/live/{s}/dvr.m3u8"),
            Self::DvrMedia(s, r) => write!(f, "/live/{s}/{r}/dvr.m3u8"),
            Self::Segment(s, r, n) => write!(f, "/live/{s}/{r}/{n}.ts"),
            Self::Init(s, r) => write!(f, "/live/{s}/{r}/init.mp4"),
            Self::Fragment(s, r, n) => write!(f, "/live/{s}/{r}/{n}.m4s"),
            Self::Part(s, r, n, p) => write!(f, "/live/{s}/{r}/{n}.{p}.m4s"),
            Self::VodMaster(s, id) => write!(f, "/vod/{s}/{id}/master.m3u8"),
            Self::VodMedia(s, id, r) => write!(f, "/vod/{s}/{id}/{r}/index.m3u8"),
            Self::VodSegment(s, id, r, n) => write!(f, "/vod/{s}/{id}/{r}/{n}.ts"),
            Self::VodInit(s, id, r) => write!(f, "/vod/{s}/{id}/{r}/init.mp4"),
            Self::VodFragment(s, id, r, n) => write!(f, "/vod/{s}/{id}/{r}/{n}.m4s"),
            Self::Signature(s, r, file) => write!(f, "/live/{s}/{r}/{file}.sig"),
            Self::VodSignature(s, id, r, file) => write!(f, "/vod/{s}/{id}/{r}/{file}.sig"),
            Self::PartKey(s, r, n) => write!(f, "/live/{s}/{r}/{n}.partkey"),
            Self::Thumbnail(s) => write!(f, "/live/{s}/{THUMBNAIL_FILE}"),
            Self::ThumbnailSignature(s) => write!(f, "/live/{s}/{THUMBNAIL_STATEMENT_FILE}"),
            Self::VodThumbnail(s, id) => write!(f, "/vod/{s}/{id}/{THUMBNAIL_FILE}"),
            Self::VodThumbnailSignature(s, id) => {
                write!(f, "/vod/{s}/{id}/{THUMBNAIL_STATEMENT_FILE}")
            }
            Self::TrustRoot => f.write_str("/trust/v1/root.pub"),
            Self::TrustBundle => f.write_str("/trust/v1/bundle"),
            Self::ProvenanceAnchors => f.write_str("/trust/v1/provenance-anchors"),
            Self::MoqEndpoint => f.write_str("/moq/v1/endpoint"),
            Self::MoqGrant(s) => write!(f, "/live/{s}/{MOQ_GRANT_FILE}"),
            Self::Streams => f.write_str("/api/v1/streams"),
            Self::Recordings => f.write_str("/api/v1/recordings"),
            Self::Health => f.write_str("/healthz"),
            Self::Readiness => f.write_str("/readyz"),
            Self::Metrics => f.write_str("/metrics"),
            Self::WhipEndpoint(s) => write!(f, "/whip/{s}"),
            Self::WhipSession(s, node, id) => write!(f, "/whip/{s}/{node}/{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purged_prefixes_are_the_streams_trees() {
        let stream = StreamName::new("town-hall").expect("name");
        let id: SessionId = "00000000000000ff".parse().expect("id");
        let [live, vod] = stream_tree_prefixes(&stream);
        let recording = recording_tree_prefix(&stream, &id);
        assert_eq!(
            StreamTree::of(&format!("{live}src/1.m4s")),
            Some(StreamTree::Live(stream.clone()))
        );
        assert_eq!(
            StreamTree::of(&format!("{recording}master.m3u8")),
            Some(StreamTree::Recording(stream.clone(), Some(id)))
        );
        assert!(recording.starts_with(&vod));
        assert_eq!(recording, "/vod/town-hall/00000000000000ff/");
    }

    #[test]
    fn tokens_are_redacted_wherever_a_query_names_one() {
        let cases = [
            ("/live/a/master.m3u8", "/live/a/master.m3u8"),
            ("/live/a/master.m3u8?x=1", "/live/a/master.m3u8?x=1"),
            (
                "/live/a/master.m3u8?token=abc.def",
                "/live/a/master.m3u8?token=<redacted>",
            ),
            (
                "/live/a/1/index.m3u8?_HLS_msn=3&token=abc&_HLS_part=1",
                "/live/a/1/index.m3u8?_HLS_msn=3&token=<redacted>&_HLS_part=1",
            ),
            ("/x?token=a&token=b", "/x?token=<redacted>&token=<redacted>"),
            (
                "/x?Token=a;access_TOKEN=b",
                "/x?Token=<redacted>;access_TOKEN=<redacted>",
            ),
            (
                "https://h:8443/vod/a/1/master.m3u8?token=s3cret#t=3",
                "https://h:8443/vod/a/1/master.m3u8?token=<redacted>#t=3",
            ),
            ("/x?token", "/x?token"),
            ("/x?token=", "/x?token=<redacted>"),
            ("/x?&&token=a&", "/x?&&token=<redacted>&"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_tokens(url), redacted, "{url}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_token_value_survives_redaction(
            before in "[a-z_=&;]{0,12}",
            // Never spelled by `before`/`after`, which could hold `x=token=…` of their own.
            value in "[A-Z0-9][A-Z0-9._~-]{0,39}",
            after in "[a-z_=&;]{0,12}",
        ) {
            let url = format!("/live/a/master.m3u8?{before}&token={value}&{after}");
            let redacted = redact_tokens(&url);
            let token_value = format!("token={value}");
            proptest::prop_assert!(!redacted.contains(&token_value), "{}", redacted);
        }
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stream_trees_cover_everything_under_a_stream() {
        let live = |s: &str| Some(StreamTree::Live(StreamName::new(s).expect("valid")));
        assert_eq!(StreamTree::of("/live/cam/master.m3u8"), live("cam"));
        assert_eq!(StreamTree::of("/live/cam/720p/3.m4s.sig"), live("cam"));
        assert_eq!(StreamTree::of("/live/cam/thumbnail.jpg"), live("cam"));
        assert_eq!(StreamTree::of("/live/cam/anything/at/all"), live("cam"));
        assert_eq!(StreamTree::of("/live/cam"), live("cam"));
        let vod = StreamTree::of("/vod/cam/00000000000000ff/master.m3u8").expect("vod");
        assert_eq!(
            vod,
            StreamTree::Recording(StreamName::new("cam").expect("valid"), Some(SessionId(255)))
        );
        assert_eq!(vod.stream().as_str(), "cam");
        assert!(matches!(
            StreamTree::of("/vod/cam/not-an-id/x"),
            Some(StreamTree::Recording(_, None))
        ));
        for outside in [
            "/live/",
            "/live/../x",
            "/api/v1/streams",
            "/livecam/x",
            "/",
            "",
        ] {
            assert_eq!(StreamTree::of(outside), None, "{outside}");
        }
    }

    #[test]
    fn path_classes() {
        for (path, class) in [
            ("/healthz", PathClass::Health),
            ("/metrics", PathClass::NodePrivate),
            ("/internal", PathClass::NodePrivate),
            ("/internal/v1/events", PathClass::NodePrivate),
            ("/live/a/master.m3u8", PathClass::LivePlaylist),
            ("/live/a/src/index.m3u8", PathClass::LivePlaylist),
            ("/live/a/src/1.ts", PathClass::Other),
            ("/live/../master.m3u8", PathClass::Other),
            ("/live/a/master.m3u8/", PathClass::Other),
            ("/live/a/b/c/index.m3u8", PathClass::Other),
            ("/vod/a/0000000000000007/master.m3u8", PathClass::Other),
            ("/healthz/", PathClass::Other),
            ("/whip", PathClass::Whip),
            ("/whip/a", PathClass::Whip),
            (
                "/whip/a/ingest1/0123456789abcdef0123456789abcdef",
                PathClass::Whip,
            ),
            ("/whip/../etc", PathClass::Whip),
            ("/whipper", PathClass::Other),
            ("/", PathClass::Other),
        ] {
            assert_eq!(PathClass::of(path), class, "{path}");
        }
    }

    #[test]
    fn rejects_traversal_and_junk() {
        for bad in [
            "",
            "//",
            "/live/../master.m3u8",
            "/live/a/../index.m3u8",
            "/live/a//index.m3u8",
            "/live/a/b/-1.ts",
            "/live/a/b/1.ts.ts",
            "/live/a/b/99999999999999999999.ts", // > u64::MAX
            "/live/a/b/1.m4s.m4s",
            "/live/a/b/1..m4s",
            "/live/a/b/.1.m4s",
            "/live/a/b/1.2.3.m4s",
            "/live/a/b/1.4294967296.m4s",
            "/live/a/b/init.m4s",
            "/live/a/b/Init.mp4",
            "/vod/a/0000000000000007/src/1.2.m4s",
            "live/a/master.m3u8",
            "/live/a%2f/master.m3u8",
            "/vod/a/../master.m3u8",
            "/vod/../0000000000000007/master.m3u8",
            "/vod/a/0000000000000007/../index.m3u8",
            "/vod/a/0000000000000007/src/../1.ts",
            "/vod/a/0000000000000007/../../../etc/passwd",
            "/vod/a/7/master.m3u8",
            "/vod/a/000000000000000G/master.m3u8",
            "/vod/a/000000000000000A/master.m3u8",
            "/vod/a/..%2f..%2f/master.m3u8",
            "/vod/a/0000000000000007/recording.json",
            "/vod/a/0000000000000007/src/index.m3u8.tmp",
            "/vod/a/0000000000000007/src/1.ts.tmp",
            "/vod/a/0000000000000007//1.ts",
            "/vod/a/0000000000000007/master.m3u8/",
            "/assets/../Cargo.toml",
            "/assets/index.html",
            "/assets/hls.js",
            "/assets/",
            "/assets/style.css/",
            "/dashboard/",
            "/publish/",
            "/whip",
            "/whip/",
            "/whip/a/",
            "/whip/../x",
            "/whip/a/ingest1",
            "/whip/a/ingest1/0123456789ABCDEF0123456789ABCDEF",
            "/whip/a/ingest1/0123456789abcdef0123456789abcde",
            "/whip/a/ingest1/0123456789abcdef0123456789abcdef0",
            "/whip/a/../0123456789abcdef0123456789abcdef",
            "/whip/a/ingest1/0123456789abcdef0123456789abcdef/",
            "/live/a/b/.sig",
            "/live/a/b/1.m4s.sig.sig",
            "/live/a/b/1.sig",
            "/live/a/b/index.m3u8.sig",
            "/live/a/b/1.partkey.sig",
            "/live/a/b/x.partkey",
            "/live/a/b/1.2.partkey",
            "/live/a/b/.partkey",
            "/vod/a/0000000000000007/src/1.2.m4s.sig",
            "/vod/a/0000000000000007/src/1.partkey",
            "/vod/a/0000000000000007/master.m3u8.sig",
            "/trust/v1/",
            "/trust/v1/root.pub/",
            "/trust/v2/bundle",
            "/trust/v1/../bundle",
        ] {
            assert_eq!(PublicPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn fixed_paths_are_spelled_as_documented() {
        for (path, spelled) in [
            (PublicPath::Index, "/"),
            (PublicPath::Dashboard, "/dashboard"),
            (PublicPath::Publish, "/publish"),
            (PublicPath::Asset(AssetName::HlsJs), "/assets/hls.min.js"),
            (PublicPath::Asset(AssetName::PlayerJs), "/assets/player.js"),
            (
                PublicPath::Asset(AssetName::DashboardJs),
                "/assets/dashboard.js",
            ),
            (PublicPath::Asset(AssetName::StyleCss), "/assets/style.css"),
            (PublicPath::Streams, "/api/v1/streams"),
            (PublicPath::Recordings, "/api/v1/recordings"),
            (PublicPath::Health, "/healthz"),
            (PublicPath::Readiness, "/readyz"),
            (PublicPath::Metrics, "/metrics"),
            (PublicPath::TrustRoot, "/trust/v1/root.pub"),
            (PublicPath::TrustBundle, "/trust/v1/bundle"),
            (
                PublicPath::ProvenanceAnchors,
                "/trust/v1/provenance-anchors",
            ),
            (PublicPath::MoqEndpoint, "/moq/v1/endpoint"),
            (
                PublicPath::MoqGrant(StreamName::new("cam").expect("valid")),
                "/live/cam/moq-grant",
            ),
            (PublicPath::Asset(AssetName::MoqJs), "/assets/moq.js"),
            (
                PublicPath::Asset(AssetName::MoqPlayJs),
                "/assets/moq-play.js",
            ),
        ] {
            assert_eq!(path.to_string(), spelled);
            assert_eq!(PublicPath::parse(spelled), Some(path));
        }
        assert_eq!(PublicPath::parse("/readyz/"), None);
    }

    #[test]
    fn vod_paths_are_spelled_as_documented() {
        let s = StreamName::new("demo").expect("valid");
        let id = SessionId(0x17a3_f0c2_b1e4_d5a6);
        let r = RenditionName::new("720p").expect("valid");
        for (path, spelled) in [
            (
                PublicPath::VodMaster(s.clone(), id),
                "/vod/demo/17a3f0c2b1e4d5a6/master.m3u8",
            ),
            (
                PublicPath::VodMedia(s.clone(), id, r.clone()),
                "/vod/demo/17a3f0c2b1e4d5a6/720p/index.m3u8",
            ),
            (
                PublicPath::VodSegment(s, id, r, 42),
                "/vod/demo/17a3f0c2b1e4d5a6/720p/42.ts",
            ),
        ] {
            assert_eq!(path.to_string(), spelled);
            assert_eq!(PublicPath::parse(spelled), Some(path));
        }
    }

    #[test]
    fn sidecars_sit_beside_their_media() {
        let s = StreamName::new("demo").expect("valid");
        let r = RenditionName::new("360p").expect("valid");
        let id = SessionId(0x17a3_f0c2_b1e4_d5a6);
        for (path, spelled) in [
            (
                PublicPath::Signature(s.clone(), r.clone(), MediaFile::Part(12, 3)),
                "/live/demo/360p/12.3.m4s.sig",
            ),
            (
                PublicPath::Signature(s.clone(), r.clone(), MediaFile::Fragment(12)),
                "/live/demo/360p/12.m4s.sig",
            ),
            (
                PublicPath::Signature(s.clone(), r.clone(), MediaFile::Ts(12)),
                "/live/demo/360p/12.ts.sig",
            ),
            (
                PublicPath::Signature(s.clone(), r.clone(), MediaFile::Init),
                "/live/demo/360p/init.mp4.sig",
            ),
            (
                PublicPath::PartKey(s.clone(), r.clone(), 12),
                "/live/demo/360p/12.partkey",
            ),
            (
                PublicPath::VodSignature(s.clone(), id, r.clone(), MediaFile::Fragment(7)),
                "/vod/demo/17a3f0c2b1e4d5a6/360p/7.m4s.sig",
            ),
            (
                PublicPath::VodSignature(s, id, r, MediaFile::Init),
                "/vod/demo/17a3f0c2b1e4d5a6/360p/init.mp4.sig",
            ),
        ] {
            assert_eq!(path.to_string(), spelled);
            assert_eq!(PublicPath::parse(spelled), Some(path));
        }
    }

    #[test]
    fn asset_names_round_trip() {
        for a in AssetName::ALL {
            assert_eq!(AssetName::from_file_name(a.file_name()), Some(a));
        }
    }

    fn any_asset() -> impl Strategy<Value = AssetName> {
        prop::sample::select(AssetName::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn path_classes_agree_with_the_parser(
            path in prop_oneof![
                "/(live|vod|internal|healthz|metrics|api|whip|publish)(/[a-z0-9._-]{0,12}){0,5}",
                "/[ -~]{0,40}",
            ],
        ) {
            let parsed = PublicPath::parse(&path);
            let expected = match parsed {
                Some(PublicPath::Health) => PathClass::Health,
                Some(PublicPath::Metrics) => PathClass::NodePrivate,
                Some(PublicPath::Master(_) | PublicPath::Media(..)) => PathClass::LivePlaylist,
                _ if path == "/internal" || path.starts_with("/internal/") => PathClass::NodePrivate,
                _ if path == "/whip" || path.starts_with("/whip/") => PathClass::Whip,
                _ => PathClass::Other,
            };
            prop_assert_eq!(PathClass::of(&path), expected, "{}", path);
        }

        /// Every path the parser serves under a stream is in that stream's tree, so a
        /// private stream's token check covers whatever a handler answers.
        #[test]
        fn parsed_stream_paths_are_in_their_streams_tree(
            path in "/(live|vod)(/[a-z0-9._-]{0,18}){1,5}",
        ) {
            if PublicPath::parse(&path).is_some() {
                let stream = path.split('/').nth(2).map(str::to_owned);
                prop_assert_eq!(
                    StreamTree::of(&path).map(|t| t.stream().to_string()),
                    stream
                );
            }
        }

        #[test]
        fn paths_round_trip(
            s in "[a-z0-9][a-z0-9_-]{0,20}",
            r in "[a-z0-9][a-z0-9_-]{0,8}",
            n in any::<u64>(),
            id in any::<u64>(),
            asset in any_asset(),
            part in any::<u32>(),
            which in 0u8..37,
            node in "[a-z0-9][a-z0-9_-]{0,12}",
            whip in any::<u128>(),
        ) {
            let s = StreamName::new(s).expect("valid");
            let r = RenditionName::new(r).expect("valid");
            let id = SessionId(id);
            let p = match which {
                0 => PublicPath::Master(s),
                1 => PublicPath::Media(s, r),
                2 => PublicPath::Segment(s, r, n),
                3 => PublicPath::Streams,
                4 => PublicPath::Health,
                5 => PublicPath::Readiness,
                6 => PublicPath::Metrics,
                7 => PublicPath::Index,
                8 => PublicPath::Dashboard,
                9 => PublicPath::Asset(asset),
                10 => PublicPath::Recordings,
                11 => PublicPath::VodMaster(s, id),
                12 => PublicPath::VodMedia(s, id, r),
                13 => PublicPath::Init(s, r),
                14 => PublicPath::Fragment(s, r, n),
                15 => PublicPath::Part(s, r, n, part),
                16 => PublicPath::VodInit(s, id, r),
                17 => PublicPath::VodFragment(s, id, r, n),
                18 => PublicPath::Publish,
                19 => PublicPath::WhipEndpoint(s),
                20 => PublicPath::WhipSession(
                    s,
                    NodeId::new(node).expect("valid"),
                    WhipSessionId(whip),
                ),
                21 => PublicPath::Signature(s, r, MediaFile::Part(n, part)),
                22 => PublicPath::Signature(s, r, MediaFile::Fragment(n)),
                23 => PublicPath::Signature(s, r, MediaFile::Init),
                24 => PublicPath::VodSignature(s, id, r, MediaFile::Ts(n)),
                25 => PublicPath::PartKey(s, r, n),
                26 => PublicPath::TrustRoot,
                27 => PublicPath::TrustBundle,
                28 => PublicPath::ProvenanceAnchors,
                29 => PublicPath::MoqEndpoint,
                30 => PublicPath::MoqGrant(s),
                31 => PublicPath::Thumbnail(s),
                32 => PublicPath::ThumbnailSignature(s),
                33 => PublicPath::VodThumbnail(s, id),
                34 => PublicPath::VodThumbnailSignature(s, id),
                35 => PublicPath::DvrMaster(s),
                36 => PublicPath::DvrMedia(s, r),
                _ => PublicPath::VodSegment(s, id, r, n),
            };
            prop_assert_eq!(PublicPath::parse(&p.to_string()), Some(p));
        }

        #[test]
        fn parse_never_panics(s in ".{0,100}") {
            let _ = PublicPath::parse(&s);
        }

        #[test]
        fn anything_parsed_under_vod_is_a_safe_relative_path(s in "/vod/[a-zA-Z0-9./%_-]{0,60}") {
            if let Some(p) = PublicPath::parse(&s) {
                let text = p.to_string();
                prop_assert!(!text.contains(".."));
                prop_assert!(!text.contains("//"));
                prop_assert!(!text.contains('%'));
            }
        }
    }
}

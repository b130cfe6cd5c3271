//! `sealcast verify URL --root-pub FILE [--seconds N] [--ca FILE]`: what the player checks,
//! outside a browser, for monitoring and for players we do not ship.
//!
//! It reads the master playlist at URL (live or a recording), and for every rendition
//! follows its media playlist: each `init.mp4`, each segment, and the parts of the segment
//! still open, fetched with their sidecars (`{URL}.sig`, a delegation `{seq}.partkey` when
//! a part names a key it does not know yet) and checked by `certs::signing::playback`, the
//! player's checks in Rust, against the root key in FILE (pinned by the operator, never
//! taken from the server) and the trust bundle the server serves (`/trust/v1/bundle`,
//! whose every item the root signed). One line per refusal on stdout (`refused URL
//! reason`), a summary at the end; the exit status is 1 when anything was refused or
//! nothing could be verified.
//!
//! Each CMAF rendition's C2PA data (docs/provenance.md) is validated too, by
//! `certs::c2pa::validate`, the rules the player follows: the init segment's manifest
//! chained to the same pinned root through its provenance anchor, each segment's and
//! part's VSI. A C2PA refusal is a line like any other, its reason a C2PA status code
//! (`livevideo.segment.invalid`, `signingCredential.untrusted`, ...); it is checked only
//! on what the statements verified, so a fragment's first refusal is the statements'.
//!
//! A live playlist is followed for `--seconds` (10 by default), a recording read to its
//! end. Whether statements count as signed now (live) or when they say (a recording) is
//! decided by URL's tree, `/live/…` or `/vod/{stream}/{id}/…` ([`Playback`]), never by
//! `#EXT-X-ENDLIST`: a live stream that ended is still checked at this machine's clock.
//! A fragment that is no longer served (it slid out of the
//! window while this was behind) is reported as unavailable, not refused, and continuity
//! starts over after it.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use certs::c2pa::validate::{
    trust_anchors_from_pem, Code, FragmentVerdict, InitVerdict, LiveValidator, Refusal,
};
use certs::signing::playback::{Check, Fragment, Playback, PlaybackVerifier, Refused, ViewerTrust};
use certs::signing::{RootPublicKey, TrustBundle};
use clap::Args;
use domain::hls::{read_master, read_media, ReadMedia, MAX_PLAYLIST};
use domain::paths::PublicPath;
use domain::time::WallClock;
use reqwest::{StatusCode, Url};

/// `sealcast verify`'s command line.
#[derive(Debug, Clone, Args)]
pub(crate) struct VerifyArgs {
    /// A master playlist: `https://HOST/live/STREAM/master.m3u8` or a recording's
    /// `/vod/STREAM/ID/master.m3u8` (a private stream's `?token=…` is kept on every URL).
    pub(crate) url: String,
    /// The cluster's root public key (`keys/root.pub` of the data directory, or the file
    /// the operator publishes): what every signature must chain up to.
    #[arg(long)]
    pub(crate) root_pub: PathBuf,
    /// How long to follow a live stream, in seconds (10 by default); a recording is read
    /// to its end.
    #[arg(long)]
    pub(crate) seconds: Option<u64>,
    /// A PEM CA certificate to trust for HTTPS (the cluster's local CA, `certs/ca.pem`).
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// C2PA trust anchors (PEM CA certificates): a C2PA manifest without a provenance
    /// anchor (signed by others, e.g. with a certificate of the C2PA trust list) is
    /// trusted when its claim signer chains to one of them.
    #[arg(long)]
    pub(crate) c2pa_trust_anchors: Option<PathBuf>,
}

/// Followed for this long when `--seconds` is not given and the stream is live.
const DEFAULT_SECONDS: u64 = 10;
/// How often a live media playlist is read again.
const POLL: Duration = Duration::from_millis(500);
/// How often the trust bundle is read again while following.
const BUNDLE_EVERY: Duration = Duration::from_secs(10);
/// Largest fragment fetched (a segment at a high rung is a few megabytes).
const MAX_FRAGMENT: usize = 64 << 20;
/// Largest sidecar, delegation or bundle fetched.
const MAX_SIGNED: usize = 8 << 20;
/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the command; `Ok(true)` when every fragment verified and there was at least one.
pub(crate) async fn run(args: VerifyArgs) -> anyhow::Result<bool> {
    let root = RootPublicKey::read_file(&args.root_pub)
        .with_context(|| format!("the root key {}", args.root_pub.display()))?;
    let mut client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let client = client.build()?;
    let anchors = match &args.c2pa_trust_anchors {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            trust_anchors_from_pem(&pem).with_context(|| format!("{}", path.display()))?
        }
        None => Vec::new(),
    };
    let master_url = Url::parse(&args.url).context("the URL")?;
    let mut run = Run {
        client,
        root,
        anchors,
        delivered: Vec::new(),
        query: master_url.query().map(str::to_owned),
        out: Tally::default(),
    };
    let bundle_url = run.with_query(master_url.join(&PublicPath::TrustBundle.to_string())?);
    let trust = run.trust(&bundle_url).await?;
    // The root's anchors of other signers' CAs: each is checked against the root by the
    // validator, so whoever serves them cannot add one. An edge without any serves none.
    let anchors_url = run.with_query(master_url.join(&PublicPath::ProvenanceAnchors.to_string())?);
    if let Some(pem) = run
        .bytes(&anchors_url, certs::c2pa::MAX_DELIVERED_ANCHORS_LEN)
        .await?
    {
        run.delivered =
            certs::c2pa::anchors_from_pem(&pem).with_context(|| format!("{anchors_url}"))?;
    }
    let master = run
        .text(&master_url)
        .await?
        .with_context(|| format!("{master_url} is not served"))?;
    // Live or a recording: from the URL asked for, never from what the playlists say
    // (`#EXT-X-ENDLIST` is unsigned, and would let a stolen key's backdated statements
    // count as signed before its revocation).
    let playback = Playback::of_path(master_url.path());
    let mut renditions = Vec::new();
    for variant in read_master(master.as_bytes()).with_context(|| format!("{master_url}"))? {
        let url = run.with_query(master_url.join(&variant.uri)?);
        let verifier = PlaybackVerifier::new(trust.clone(), playback.clone());
        renditions.push(Rendition::new(url, verifier));
    }
    let started = Instant::now();
    let mut bundle_read = Instant::now();
    loop {
        let mut all_ended = true;
        for r in &mut renditions {
            if !r.ended {
                run.follow(r).await;
                all_ended &= r.ended;
            }
        }
        // A recording is read to its end; a live stream for as long as asked.
        let limit = args
            .seconds
            .map_or(Duration::from_secs(DEFAULT_SECONDS), Duration::from_secs);
        if all_ended || started.elapsed() >= limit {
            break;
        }
        if bundle_read.elapsed() >= BUNDLE_EVERY {
            bundle_read = Instant::now();
            if let Ok(bundle) = run.bundle(&bundle_url).await {
                for r in &mut renditions {
                    r.verifier.trust_mut().admit_bundle(&bundle);
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let t = &run.out;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "verified {} fragments ({} init, {} segments, {} parts) of {} renditions; refused {}; unavailable {}",
        t.init + t.segments + t.parts,
        t.init,
        t.segments,
        t.parts,
        renditions.len(),
        t.refused,
        t.unavailable
    )?;
    let signers: Vec<&str> = t.signers.iter().map(String::as_str).collect();
    writeln!(
        stdout,
        "C2PA: {} fragments verified of {} signed renditions (signed by {}; {} co-signed by a certified ingest key); {} renditions unsigned",
        t.c2pa_fragments,
        t.c2pa_renditions,
        if signers.is_empty() { "nobody".to_owned() } else { signers.join(", ") },
        t.cosigned,
        t.c2pa_unsigned
    )?;
    Ok(t.refused == 0 && t.init + t.segments + t.parts > 0)
}

/// What was seen.
#[derive(Debug, Default)]
struct Tally {
    init: u64,
    segments: u64,
    parts: u64,
    refused: u64,
    unavailable: u64,
    /// Renditions whose init segment's C2PA manifest verified.
    c2pa_renditions: u64,
    /// Renditions whose init segment carries no C2PA manifest.
    c2pa_unsigned: u64,
    /// Segments and parts whose VSI verified.
    c2pa_fragments: u64,
    /// The claim signers' subjects.
    signers: std::collections::BTreeSet<String>,
    /// Manifests whose co-signature verified (the cluster's algorithm).
    cosigned: u64,
}

/// One rendition being followed.
struct Rendition {
    playlist: Url,
    verifier: PlaybackVerifier,
    /// The C2PA validator, from the first init segment on (an MPEG-TS rendition has none).
    c2pa: Option<LiveValidator>,
    /// Init segments verified (by URL).
    inits: HashSet<(String, u64)>,
    /// The last whole segment checked.
    last_segment: Option<u64>,
    /// The last part checked.
    last_part: Option<(u64, u32)>,
    ended: bool,
}

impl Rendition {
    /// Continuity starts over after a fragment that could not be fetched.
    fn reposition(&mut self) {
        self.verifier.reposition();
        if let Some(c2pa) = &mut self.c2pa {
            c2pa.reposition();
        }
    }

    fn new(playlist: Url, verifier: PlaybackVerifier) -> Self {
        Rendition {
            playlist,
            verifier,
            c2pa: None,
            inits: HashSet::new(),
            last_segment: None,
            last_part: None,
            ended: false,
        }
    }
}

/// One fragment to fetch and check.
struct Wanted {
    url: Url,
    sequence: Option<u64>,
    part: Option<u32>,
    discontinuity: u64,
    duration: Option<f64>,
}

struct Run {
    client: reqwest::Client,
    root: RootPublicKey,
    /// C2PA trust anchors (DER) beside the root's provenance anchors.
    anchors: Vec<Vec<u8>>,
    /// The root's anchors of other signers' CAs, as the edge serves them.
    delivered: Vec<certs::c2pa::ProvenanceAnchor>,
    /// The master URL's query (a private stream's token), carried onto every URL.
    query: Option<String>,
    out: Tally,
}

impl Run {
    fn with_query(&self, mut url: Url) -> Url {
        if url.query().is_none() {
            url.set_query(self.query.as_deref());
        }
        url
    }

    async fn bundle(&self, url: &Url) -> anyhow::Result<TrustBundle> {
        let bytes = self
            .bytes(url, MAX_SIGNED)
            .await?
            .with_context(|| format!("{url} is not served"))?;
        TrustBundle::decode(&bytes).with_context(|| format!("{url}"))
    }

    async fn trust(&self, url: &Url) -> anyhow::Result<ViewerTrust> {
        let bundle = self.bundle(url).await?;
        let mut trust = ViewerTrust::new(self.root.clone());
        let refused = trust.admit_bundle(&bundle);
        if refused > 0 {
            tracing::warn!(
                refused,
                "items of the trust bundle are not the pinned root's"
            );
        }
        Ok(trust)
    }

    /// GETs `url`: `None` for a 404 or 410, the body (at most `max` bytes) for a 2xx.
    async fn bytes(&self, url: &Url, max: usize) -> anyhow::Result<Option<Vec<u8>>> {
        let mut response = self.client.get(url.clone()).send().await?;
        match response.status() {
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
            s if !s.is_success() => bail!("{url}: {s}"),
            _ => {}
        }
        if response.content_length().is_some_and(|n| n > max as u64) {
            bail!("{url}: over {max} bytes");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > max {
                bail!("{url}: over {max} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    async fn text(&self, url: &Url) -> anyhow::Result<Option<String>> {
        Ok(self
            .bytes(url, MAX_PLAYLIST)
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Reads a rendition's playlist once and checks what is new in it.
    async fn follow(&mut self, r: &mut Rendition) {
        let text = match self.text(&r.playlist).await {
            Ok(Some(text)) => text,
            Ok(None) => {
                self.unavailable(&r.playlist, "not served");
                r.ended = true;
                return;
            }
            Err(e) => {
                self.unavailable(&r.playlist, &format!("{e:#}"));
                return;
            }
        };
        let playlist = match media_playlist(&text) {
            Ok(p) => p,
            Err(e) => {
                self.unavailable(&r.playlist, &format!("{e:#}"));
                return;
            }
        };
        for wanted in self.wanted(r, &playlist) {
            self.check(r, &playlist, wanted).await;
        }
        r.ended = playlist.ended || playlist.vod;
    }

    /// What is new in `playlist`, in order: init segments not verified yet, segments after
    /// the last one checked, and parts of the open segment after the last one checked.
    fn wanted(&self, r: &mut Rendition, playlist: &ReadMedia) -> Vec<Wanted> {
        let mut out = Vec::new();
        let base = r.playlist.clone();
        let join = |uri: &str| base.join(uri).ok().map(|u| self.with_query(u));
        for e in &playlist.segments {
            if let Some(map) = e.map.as_deref().and_then(join) {
                // Again at each discontinuity: a new publish session serves its own init
                // segment (its own C2PA manifest and session key) at the same URL.
                if r.inits.insert((map.to_string(), e.discontinuity_sequence)) {
                    out.push(Wanted {
                        url: map,
                        sequence: None,
                        part: None,
                        discontinuity: e.discontinuity_sequence,
                        duration: None,
                    });
                }
            }
            match &e.uri {
                Some(uri) => {
                    if e.gap || r.last_segment.is_some_and(|l| e.sequence <= l) {
                        continue;
                    }
                    r.last_segment = Some(e.sequence);
                    if let Some(url) = join(uri) {
                        out.push(Wanted {
                            url,
                            sequence: Some(e.sequence),
                            part: None,
                            discontinuity: e.discontinuity_sequence,
                            duration: e.duration.map(|d| d.as_secs_f64()),
                        });
                    }
                }
                // The open segment: its parts.
                None => {
                    for (index, p) in (0u32..).zip(&e.parts) {
                        if p.gap || r.last_part.is_some_and(|l| (e.sequence, index) <= l) {
                            continue;
                        }
                        r.last_part = Some((e.sequence, index));
                        if let Some(url) = join(&p.uri) {
                            out.push(Wanted {
                                url,
                                sequence: Some(e.sequence),
                                part: Some(index),
                                discontinuity: e.discontinuity_sequence,
                                duration: Some(p.duration.as_secs_f64()),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Fetches one fragment and its sidecar and checks them.
    async fn check(&mut self, r: &mut Rendition, playlist: &ReadMedia, w: Wanted) {
        let bytes = match self.bytes(&w.url, MAX_FRAGMENT).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.unavailable(&w.url, "not served");
                r.reposition();
                return;
            }
            Err(e) => {
                self.unavailable(&w.url, &format!("{e:#}"));
                r.reposition();
                return;
            }
        };
        let sidecar = match self.bytes(&sidecar_url(&w.url), MAX_SIGNED).await {
            Ok(sidecar) => sidecar,
            Err(e) => {
                self.unavailable(&sidecar_url(&w.url), &format!("{e:#}"));
                None
            }
        };
        let fragment = Fragment {
            path: w.url.path(),
            bytes: &bytes,
            sidecar: sidecar.as_deref(),
            sequence: w.sequence,
            part: w.part,
            discontinuity: w.discontinuity,
            duration: w.duration,
            now_ms: WallClock.unix_ms(),
        };
        let gap = |n: u64| playlist.is_gap(n);
        let mut verdict = r.verifier.check(&fragment, gap);
        if let Check::NeedsPartKey { path } = &verdict {
            let part_key = match part_key_url(&w.url, path) {
                Some(url) => self.bytes(&url, MAX_SIGNED).await.unwrap_or(None),
                None => None,
            };
            verdict = match r.verifier.admit_part_key(&fragment, part_key.as_deref()) {
                Ok(()) => r.verifier.check(&fragment, gap),
                Err(refused) => Check::Refused(refused),
            };
        }
        match verdict {
            Check::Verified => {
                match (w.sequence, w.part) {
                    (None, _) => self.out.init += 1,
                    (Some(_), None) => self.out.segments += 1,
                    (Some(_), Some(_)) => self.out.parts += 1,
                }
                self.check_c2pa(r, &w, &bytes, fragment.now_ms / 1000);
            }
            Check::Refused(refused) => self.refused(&w.url, &refused),
            Check::NeedsPartKey { .. } => self.refused(
                &w.url,
                &Refused {
                    reason: certs::signing::playback::Reason::UnknownKey,
                    detail: "no delegation".into(),
                },
            ),
        }
    }

    /// The C2PA check of a fragment the statements verified.
    fn check_c2pa(&mut self, r: &mut Rendition, w: &Wanted, bytes: &[u8], now: u64) {
        let Rendition { c2pa, verifier, .. } = r;
        // Revocations arrive with each newer bundle: the credentials of a verified
        // manifest are re-checked at every fragment (C2PA 2.3 §19.7.3).
        let revoked =
            |v: &LiveValidator| v.check_revocation(|id| verifier.trust().revoked_at(id), now);
        let outcome = if w.sequence.is_none() {
            let validator = c2pa.get_or_insert_with(|| {
                LiveValidator::with_trust_anchors(self.root.clone(), self.anchors.clone())
                    .with_delivered_anchors(self.delivered.clone())
            });
            validator
                .admit_init(bytes, now)
                .and_then(|verdict| revoked(validator).map(|()| verdict))
                .and_then(|verdict| {
                    // The co-signature in the cluster's own algorithm, by an ingest key
                    // the root certified (docs/provenance.md), when the manifest has one.
                    let Some(c) = validator.cosignature() else {
                        return Ok(verdict);
                    };
                    let trust = verifier.trust();
                    match trust.verify_signed(
                        c.key_id,
                        c.algorithm,
                        c.signed_at,
                        &c.message,
                        &c.signature,
                    ) {
                        Ok(()) => {
                            self.out.cosigned += 1;
                            Ok(verdict)
                        }
                        Err(refused) => Err(Refusal {
                            code: Code::CosignatureMismatch,
                            detail: format!("{}: {}", refused.reason, refused.detail),
                        }),
                    }
                })
                .map(|verdict| match verdict {
                    InitVerdict::Unsigned => self.out.c2pa_unsigned += 1,
                    InitVerdict::Verified { signer } => {
                        self.out.c2pa_renditions += 1;
                        self.out.signers.insert(signer);
                    }
                })
        } else if let Some(validator) = c2pa {
            revoked(validator)
                .and_then(|()| validator.check_fragment(bytes, w.part.is_some()))
                .map(|verdict| {
                    if verdict == FragmentVerdict::Verified {
                        self.out.c2pa_fragments += 1;
                    }
                })
        } else {
            Ok(())
        };
        if let Err(refusal) = outcome {
            self.out.refused += 1;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(
                stdout,
                "refused {} {} ({})",
                w.url, refusal.code, refusal.detail
            );
        }
    }

    fn refused(&mut self, url: &Url, refused: &Refused) {
        self.out.refused += 1;
        let mut stdout = std::io::stdout().lock();
        let _ = if refused.detail.is_empty() {
            writeln!(stdout, "refused {url} {}", refused.reason)
        } else {
            writeln!(
                stdout,
                "refused {url} {} ({})",
                refused.reason, refused.detail
            )
        };
    }

    fn unavailable(&mut self, url: &Url, why: &str) {
        self.out.unavailable += 1;
        tracing::warn!(%url, why, "unavailable");
    }
}

/// A media playlist as `verify` follows it (`domain::hls::read_media`): a delta update is
/// refused (it asks for full playlists, and what was skipped cannot be checked).
fn media_playlist(text: &str) -> anyhow::Result<ReadMedia> {
    let playlist = read_media(text.as_bytes())?;
    if playlist.skipped > 0 {
        bail!("a delta update (EXT-X-SKIP): ask for the full playlist");
    }
    Ok(playlist)
}

/// The sidecar of a media URL: `.sig` after the path, the query kept.
fn sidecar_url(url: &Url) -> Url {
    let mut sidecar = url.clone();
    sidecar.set_path(&format!("{}.sig", url.path()));
    sidecar
}

/// A delegation's `path` on a part's origin, with the part's query.
fn part_key_url(part: &Url, path: &str) -> Option<Url> {
    let mut url = part.join(path).ok()?;
    url.set_query(part.query());
    Some(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use certs::signing::{RootKey, SigningKey, Validity};
    use domain::live_event::LiveEvent;
    use domain::wire::{MediaStatement, SegmentStatement, SignatureAlgorithm, Signed};
    use domain::{
        Codecs, InitSegment, NodeId, RenditionInfo, RenditionName, SegmentMeta, SessionId,
        StreamName,
    };
    use sha2::{Digest, Sha256};

    use super::*;

    /// The files of one rendition's stream under `tree` (`/live/demo` or a recording's
    /// `/vod/demo/{id}`), ended (`#EXT-X-ENDLIST`): an init segment whose description
    /// `signer` issued at `described_ms`, and one segment, both with their sidecars.
    fn ended_stream(
        tree: &str,
        session: SessionId,
        signer: &SigningKey,
        described_ms: u64,
    ) -> HashMap<String, Vec<u8>> {
        let stream = StreamName::new("demo").expect("stream");
        let rendition = RenditionName::new("360p").expect("rendition");
        let init = vec![7u8; 600];
        let event = LiveEvent::Rendition {
            stream: stream.clone(),
            info: RenditionInfo {
                name: rendition.clone(),
                width: 640,
                height: 360,
                frame_rate: 30.0,
                codecs: "avc1.64001e,mp4a.40.2".parse::<Codecs>().expect("codecs"),
                init: Some(InitSegment::new(init.clone().into()).expect("init")),
                part_target_us: None,
            },
        };
        let body = serde_json::to_vec(&event).expect("event JSON");
        let segment = vec![9u8; 3000];
        let statement = SegmentStatement::from_meta(
            &SegmentMeta {
                stream,
                rendition,
                session,
                sequence: 0,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: Duration::from_secs(2),
                start_pts_90k: 0,
            },
            signer.algorithm(),
            signer.key_id(),
            segment.len() as u64,
            Sha256::digest(&segment).into(),
        )
        .encode();
        let signature = signer.sign(&statement);
        let base = format!("{tree}/360p");
        HashMap::from([
            (
                format!("{tree}/master.m3u8"),
                b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000\n360p/index.m3u8\n".to_vec(),
            ),
            (
                format!("{base}/index.m3u8"),
                b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                  #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.00000,\n0.m4s\n#EXT-X-ENDLIST\n"
                    .to_vec(),
            ),
            (
                format!("{base}/init.mp4.sig"),
                signer.sign_event(body, described_ms).encode(),
            ),
            (format!("{base}/init.mp4"), init),
            (
                format!("{base}/0.m4s.sig"),
                Signed::<MediaStatement>::new(statement, signature).encode(),
            ),
            (format!("{base}/0.m4s"), segment),
        ])
    }

    /// Issue 45 item 4: media signed by a stolen key the root revoked a minute ago, its
    /// rendition described ten minutes ago, served as a live stream that ended: refused,
    /// because `/live/` is checked at this clock whatever the playlist says. The same media
    /// as a recording (`/vod/`) verifies: signed, it says, before the revocation.
    #[tokio::test]
    async fn an_ended_live_stream_is_still_checked_at_this_clock() {
        let now = WallClock.unix_ms() / 1000;
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let stolen = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        let validity = Validity::new(now - 86_400, now + 86_400).expect("validity");
        let certificate = root
            .certify(
                stolen.public_key(),
                NodeId::new("ingest1").expect("node"),
                validity,
            )
            .expect("certify");
        let bundle = TrustBundle {
            certificates: vec![certificate.encode()],
            revocations: vec![root.revoke(stolen.key_id(), now - 60).encode()],
        };
        let session = SessionId(0x5ea1_0000_0000_0001);
        let backdated = (now - 600) * 1000;
        let mut files = ended_stream("/live/demo", session, &stolen, backdated);
        files.extend(ended_stream(
            &format!("/vod/demo/{session}"),
            session,
            &stolen,
            backdated,
        ));
        files.insert("/trust/v1/bundle".into(), bundle.encode());
        let mut app = axum::Router::new();
        for (path, bytes) in files {
            let answer = move || {
                let bytes = bytes.clone();
                async move { bytes }
            };
            app = app.route(&path, axum::routing::get(answer));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().expect("temp dir");
        let root_pub = dir.path().join("root.pub");
        root.public_key().write_file(&root_pub).expect("root.pub");
        let verify = |url: String| {
            run(VerifyArgs {
                url,
                root_pub: root_pub.clone(),
                seconds: Some(5),
                ca: None,
                c2pa_trust_anchors: None,
            })
        };

        let live = verify(format!("{origin}/live/demo/master.m3u8")).await;
        assert!(!live.expect("verify ran"), "the ended live stream verified");
        let recording = verify(format!("{origin}/vod/demo/{session}/master.m3u8")).await;
        assert!(recording.expect("verify ran"), "the recording was refused");
        server.abort();
    }

    /// A republish keeps the init segment's URL: it is fetched again for the new
    /// discontinuity (its manifest and session key are the new session's), not before.
    #[test]
    fn an_init_segment_is_checked_again_at_each_discontinuity() {
        let client = reqwest::Client::new();
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let run = Run {
            client,
            root: root.public_key(),
            anchors: Vec::new(),
            delivered: Vec::new(),
            query: None,
            out: Tally::default(),
        };
        let playlist_url = Url::parse("http://h/live/s/360p/index.m3u8").expect("url");
        let verifier = PlaybackVerifier::new(
            certs::signing::playback::ViewerTrust::new(root.public_key()),
            Playback::of_path(playlist_url.path()),
        );
        let mut r = Rendition::new(playlist_url, verifier);
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
                    #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n4.m4s\n#EXTINF:2,\n5.m4s\n\
                    #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n6.m4s\n";
        let playlist = media_playlist(text).expect("a playlist");
        let got: Vec<(String, Option<u64>, u64)> = run
            .wanted(&mut r, &playlist)
            .into_iter()
            .map(|w| (w.url.path().to_owned(), w.sequence, w.discontinuity))
            .collect();
        let init = "/live/s/360p/init.mp4".to_owned();
        assert_eq!(
            got,
            vec![
                (init.clone(), None, 0),
                ("/live/s/360p/4.m4s".into(), Some(4), 0),
                ("/live/s/360p/5.m4s".into(), Some(5), 0),
                (init, None, 1),
                ("/live/s/360p/6.m4s".into(), Some(6), 1),
            ]
        );
        assert!(run.wanted(&mut r, &playlist).is_empty(), "nothing new");
    }

    #[test]
    fn delta_updates_are_refused() {
        let delta = media_playlist("#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n");
        assert!(format!("{:#}", delta.expect_err("refused")).contains("delta update"));
        let full = media_playlist("#EXTM3U\n#EXTINF:2,\n1.m4s\n").expect("a full playlist");
        assert_eq!(full.segments.len(), 1);
        assert!(media_playlist("#EXTM3U\n1.m4s\n").is_err());
    }

    #[test]
    fn sidecars_and_part_keys_sit_beside_the_media_and_keep_the_query() {
        let part = Url::parse("https://h/live/s/360p/12.3.m4s?token=abc").expect("url");
        assert_eq!(
            sidecar_url(&part).as_str(),
            "https://h/live/s/360p/12.3.m4s.sig?token=abc"
        );
        assert_eq!(
            part_key_url(&part, "/live/s/360p/12.partkey")
                .expect("url")
                .as_str(),
            "https://h/live/s/360p/12.partkey?token=abc"
        );
    }
}

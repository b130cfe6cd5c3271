//! Fuzz harnesses: one function per parser that reads bytes from outside, driven the way
//! the product drives it, asserting what must hold for any input (a strict decoder
//! re-encodes what it accepted to the same bytes; an accepted Host or path cannot smuggle
//! anything). A harness panics only when such a property breaks, or when the code under
//! test panics.
//!
//! `fuzz/` runs each one under libFuzzer (`fuzz/run.sh SECONDS`); `tests/replay.rs` runs
//! every file of `fuzz/corpus/{target}` and `fuzz/regressions/{target}` through them on
//! every `cargo test`, so corpora and past crashes stay checked without a fuzzing
//! toolchain. [`TARGETS`] is the list both use.
#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use certs::signing::{
    IngestCertificate, Revocation, RootPublicKey, SignatureAlgorithm, TrustStore,
};
use domain::paths::PublicPath;
use domain::push_protocol::{ControlEvent, InternalPath, PartHeaders, SegmentHeaders};
use domain::wire::{
    EventStatement, PartStatement, SegmentStatement, SignedEvent, SignedMedia, SignedThumbnail,
    ThumbnailStatement,
};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};

mod c2pa;
mod hls;
mod srt;
mod webrtc;

pub use c2pa::{c2pa_validate, cmaf_c2pa};
pub use hls::hls_playlist;
pub use srt::{
    drive_srt, srt_listener, srt_listener_record, srt_packet, SrtReach, SRT_ANSWER, SRT_SEND,
    SRT_SEND_WITH_COOKIE, SRT_TICK,
};
pub use webrtc::{ice_tcp_framing, whip_demux, whip_offer};

/// A harness: any bytes in, a panic only if a property breaks.
pub type Harness = fn(&[u8]);

/// Every harness by target name (the file name under `fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, Harness)] = &[
    ("rtmp_session", rtmp_session),
    ("flv", flv),
    ("h264", h264),
    ("aac", aac),
    ("manifest", manifest),
    ("control_event", control_event),
    ("push_request", push_request),
    ("presence_load", presence_load),
    ("certificates", certificates),
    ("cookie_host", cookie_host),
    ("names", names),
    ("config", config),
    ("ertmp", ertmp),
    ("mpegts", mpegts),
    ("video_config", video_config),
    ("part_key", part_key),
    ("playback_token", playback_token),
    ("whip_demux", whip_demux),
    ("whip_offer", whip_offer),
    ("ice_tcp_framing", ice_tcp_framing),
    ("srt_packet", srt_packet),
    ("srt_listener", srt_listener),
    ("hls_playlist", hls_playlist),
    ("cmaf_c2pa", cmaf_c2pa),
    ("c2pa_validate", c2pa_validate),
    ("thumbnail", thumbnail),
];

/// The fixed Ed25519 root the `certificates` target trusts (the seed corpus holds
/// certificates and revocations it signed; see `examples/seeds.rs`).
pub const ROOT_ED25519: &[u8; 32] = include_bytes!("../../fuzz/seeds/root.ed25519.pub");

/// The RTMP server side as `ingest::rtmp` drives it before and after a publish: the
/// handshake, then every byte into rml_rtmp's `ServerSession`, accepting `connect` and
/// `publish`, and every video and audio message into the FLV tag parsers.
pub fn rtmp_session(data: &[u8]) {
    drive_rtmp(data);
}

/// How far [`rtmp_session`] got with an input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RtmpReach {
    /// A `publish` was requested (and accepted).
    pub published: bool,
    /// Video messages parsed.
    pub video: usize,
    /// Audio messages parsed.
    pub audio: usize,
}

/// [`rtmp_session`], reporting how far it got.
pub fn drive_rtmp(data: &[u8]) -> RtmpReach {
    let mut reach = RtmpReach::default();
    // The handshake, fed in pieces as reads from a socket arrive, until it completes.
    let mut handshake = Handshake::new(PeerType::Server);
    let mut rest = None;
    for (i, piece) in data.chunks(1000).enumerate() {
        match handshake.process_bytes(piece) {
            Ok(HandshakeProcessResult::InProgress { .. }) => {}
            Ok(HandshakeProcessResult::Completed {
                mut remaining_bytes,
                ..
            }) => {
                remaining_bytes.extend_from_slice(data.get((i + 1) * 1000..).unwrap_or_default());
                rest = Some(remaining_bytes);
                break;
            }
            Err(_) => return reach,
        }
    }
    // Still in progress when the bytes ran out: the connection ends.
    let Some(rest) = rest else {
        return reach;
    };
    let Ok((mut session, _)) = ServerSession::new(ServerSessionConfig::new()) else {
        return reach;
    };
    // Fed in small pieces, as reads from a socket arrive: a request is accepted before the
    // bytes after it are read, as with a client that waits for the answer (a `publish` in
    // the same read as its `connect` is refused as not connected).
    for piece in rest.chunks(64) {
        let Ok(results) = session.handle_input(piece) else {
            return reach;
        };
        let mut pending = std::collections::VecDeque::from(results);
        while let Some(result) = pending.pop_front() {
            let ServerSessionResult::RaisedEvent(event) = result else {
                continue;
            };
            let more = match event {
                ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                    session.accept_request(request_id).unwrap_or_default()
                }
                ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                    reach.published = true;
                    session.accept_request(request_id).unwrap_or_default()
                }
                ServerSessionEvent::VideoDataReceived { data, .. } => {
                    reach.video += 1;
                    let _ = container::parse_video_tag(&data);
                    Vec::new()
                }
                ServerSessionEvent::AudioDataReceived { data, .. } => {
                    reach.audio += 1;
                    let _ = container::parse_audio_tag(&data);
                    Vec::new()
                }
                _ => Vec::new(),
            };
            pending.extend(more);
        }
    }
    reach
}

/// An FLV file through `FlvReader` (as `sealcast ladder` reads one), and the same bytes as
/// one video and one audio tag body.
pub fn flv(data: &[u8]) {
    if let Ok(mut reader) = container::FlvReader::new(data) {
        for _ in 0..10_000 {
            match reader.next_tag() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
    let body = Bytes::copy_from_slice(data);
    let _ = container::parse_video_tag(&body);
    let _ = container::parse_audio_tag(&body);
}

/// H.264: an AVC decoder configuration record, an SPS, and an Annex B access unit as the
/// CMAF muxer reads its configuration from.
pub fn h264(data: &[u8]) {
    use container::h264::{AvcConfig, SpsInfo};
    if let Ok(config) = AvcConfig::parse(data) {
        let _ = config.codec_string();
    }
    let _ = SpsInfo::parse(data);
    if let Ok(config) = AvcConfig::from_annexb(data) {
        let _ = config.codec_string();
    }
}

/// AAC: an AudioSpecificConfig, and the ADTS header made from it.
pub fn aac(data: &[u8]) {
    if let Ok(config) = container::AacConfig::parse(data) {
        let _ = config.codec_string();
        let _ = config.adts_header(data.len());
        let _ = config.frame_duration_90k();
    }
}

/// Segment and part statements, their MQTT envelopes, control-event statements and their
/// envelopes: whatever decodes re-encodes to exactly the same bytes, and no bytes decode
/// as both a segment's and a part's statement.
pub fn manifest(data: &[u8]) {
    let segment = SegmentStatement::decode(data);
    if let Ok(m) = &segment {
        assert_eq!(m.encode(), data, "a segment statement with two encodings");
    }
    if let Ok(m) = PartStatement::decode(data) {
        assert_eq!(m.encode(), data, "a part statement with two encodings");
        assert!(
            segment.is_err(),
            "bytes that are both a segment's and a part's statement"
        );
    }
    if let Ok(e) = SignedMedia::decode(data) {
        assert_eq!(e.encode(), data, "an envelope with two encodings");
        let _ = e.segment();
        let _ = e.statement();
    }
    if let Ok(s) = EventStatement::decode(data) {
        assert_eq!(s.encode(), data, "a statement with two encodings");
    }
    if let Ok(e) = SignedEvent::decode(data) {
        assert_eq!(e.encode(), data, "a signed event with two encodings");
        if let Ok(s) = e.statement() {
            let _ = serde_json::from_slice::<ControlEvent>(&s.body);
        }
    }
}

/// A thumbnail's statement and its envelope (what a thumbnail push carries and
/// `thumbnail.jpg.sig` serves) as an edge reads them: strict, one encoding each, never a
/// segment's or a part's statement at once.
pub fn thumbnail(data: &[u8]) {
    if let Ok(t) = ThumbnailStatement::decode(data) {
        assert_eq!(t.encode(), data, "a thumbnail statement with two encodings");
        assert!(
            SegmentStatement::decode(data).is_err() && PartStatement::decode(data).is_err(),
            "bytes that are both a thumbnail's and a media statement"
        );
        assert!(t.byte_len <= domain::MAX_THUMBNAIL_BYTES as u64);
    }
    if let Ok(e) = SignedThumbnail::decode(data) {
        assert_eq!(e.encode(), data, "a thumbnail envelope with two encodings");
        if let Ok(t) = e.statement() {
            assert_eq!(t.encode(), e.statement_bytes);
        }
    }
}

/// A control event's JSON, as an edge reads it from a verified statement: what parses
/// serializes and parses back to the same event, and any rendition in it is valid.
pub fn control_event(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<ControlEvent>(data) else {
        return;
    };
    if let ControlEvent::Live(domain::LiveEvent::Rendition { info, .. }) = &event {
        assert!(info.check().is_ok(), "an unchecked rendition parsed");
        assert!(
            !info.codecs.as_str().contains(['"', '\n', '\r', ' ', '#']),
            "codecs with playlist syntax"
        );
        if let Some(init) = &info.init {
            assert!(
                (1..=domain::InitSegment::MAX_LEN).contains(&init.bytes().len()),
                "an init segment over its cap"
            );
        }
    }
    if let Ok(json) = serde_json::to_vec(&event) {
        let again = serde_json::from_slice::<ControlEvent>(&json);
        assert_eq!(
            again.ok(),
            Some(event),
            "a control event that does not round-trip"
        );
    }
}

/// A segment or part push: the path and the `x-sealcast-*` headers. The input is a path
/// line, then `name: value` lines.
pub fn push_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let path = lines.next().unwrap_or_default();
    if let Some(parsed) = InternalPath::parse(path) {
        assert_eq!(InternalPath::parse(&parsed.to_string()), Some(parsed));
    }
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(": ")).collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let _ = SegmentHeaders::parse(get);
    if let Ok(part) = PartHeaders::parse(get) {
        let pairs = part.pairs();
        let again = PartHeaders::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        });
        assert_eq!(again, Ok(part), "part headers that do not round-trip");
    }
}

/// Presence and load-report payloads as they arrive over MQTT: plain and signed presences
/// decoded, and checked as the load balancer and the ingests do, against [`ROOT_ED25519`].
pub fn presence_load(data: &[u8]) {
    use domain::presence::{Announcement, Presence, Role};
    if let Ok(p) = Presence::decode(data) {
        let again = Presence::decode(&p.encode());
        assert_eq!(again.ok(), Some(p), "a presence that does not round-trip");
    }
    if let Ok(Announcement::Signed(signed)) = Announcement::decode(data) {
        assert_eq!(
            signed.encode(),
            data,
            "a signed presence with two encodings"
        );
        if let Ok(statement) = signed.statement() {
            assert_eq!(statement.encode(), signed.statement_bytes);
        }
    }
    if let Ok(root) = RootPublicKey::from_bytes(SignatureAlgorithm::Ed25519, ROOT_ED25519) {
        let verifier = certs::signing::PresenceVerifier::new(root);
        if let Ok(node) = domain::NodeId::new("broadcast1") {
            if let Ok(p) = verifier.check(&node, data, 1_800_000_000) {
                // Believed: either an ingest's plain presence, or signed by a certified
                // edge key.
                assert!(
                    p.role == Role::Ingest || data.first() != Some(&b'{'),
                    "an unsigned broadcast presence was believed"
                );
            }
        }
    }
    if let Ok(r) = domain::load::LoadReport::decode(data) {
        assert!(domain::load::LoadReport::decode(&r.encode()).is_ok());
    }
}

/// Ingest certificates, revocations and trust bundles: decoded strictly, then offered to a
/// trust store pinned to [`ROOT_ED25519`], as an edge does with what arrives on their
/// topics and a viewer with the bundle it fetches; and provenance anchors, alone and as
/// the PEM list an edge serves.
pub fn certificates(data: &[u8]) {
    if let Ok(c) = IngestCertificate::decode(data) {
        assert_eq!(c.encode(), data, "a certificate with two encodings");
    }
    if let Ok(c) = certs::signing::EdgeCertificate::decode(data) {
        assert_eq!(c.encode(), data, "an edge certificate with two encodings");
        assert!(
            IngestCertificate::decode(data).is_err(),
            "an edge certificate read as an ingest one"
        );
    }
    if let Ok(r) = Revocation::decode(data) {
        assert_eq!(r.encode(), data, "a revocation with two encodings");
    }
    let Ok(root) = RootPublicKey::from_bytes(SignatureAlgorithm::Ed25519, ROOT_ED25519) else {
        return;
    };
    let mut trust = TrustStore::new(root.clone());
    let now = 1_800_000_000;
    let admitted = trust.add_certificate(data, now);
    let _ = trust.revoke(data);
    if let Ok(key_id) = admitted {
        // Whatever the store admitted is a key the root certified.
        assert!(trust.key(key_id).is_some());
    }
    // The same bytes as a viewer's trust bundle: one encoding, and what a store admits
    // from it it serves again unchanged.
    if let Ok(bundle) = certs::signing::TrustBundle::decode(data) {
        assert_eq!(bundle.encode(), data, "a trust bundle with two encodings");
        let mut viewer = TrustStore::new(root.clone());
        let _ = viewer.admit(&bundle, now);
        let again = viewer.bundle();
        let mut rebuilt = TrustStore::new(viewer.root().clone());
        assert!(
            rebuilt.admit(&again, now).is_empty(),
            "a served bundle refused"
        );
        assert_eq!(rebuilt.bundle(), again, "a served bundle changed");
    }
    // The same bytes as a provenance anchor, and as the PEM list of them an edge serves
    // (`/trust/v1/provenance-anchors`): one encoding, and what is read is written back
    // to the same anchors.
    if let Ok(a) = certs::c2pa::ProvenanceAnchor::decode(data) {
        assert_eq!(a.encode(), data, "a provenance anchor with two encodings");
        let _ = root.verify_anchor(&a, now);
    }
    if let Ok(anchors) = certs::c2pa::anchors_from_pem(data) {
        assert!(anchors.len() <= certs::c2pa::MAX_DELIVERED_ANCHORS);
        let again = certs::c2pa::anchors_pem(&anchors);
        assert_eq!(
            certs::c2pa::anchors_from_pem(again.as_bytes()).ok(),
            Some(anchors),
            "provenance anchors read back otherwise"
        );
    }
}

/// The load balancer's sticky cookie (checked against a fixed key) and its Host check: an
/// accepted Host cannot carry anything that would change a URL's authority.
pub fn cookie_host(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = loadbalancer::CookieKey::new(&[7; 32]) {
        let cookies = loadbalancer::StickyCookies::new(key);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let _ = cookies.verify(&text, now);
    }
    if loadbalancer::redirect::is_sane_host(&text) {
        assert!(
            !text.contains(['/', '\\', '@', '?', '#', ' ', '\r', '\n', '\t']),
            "an accepted Host with URL syntax: {text:?}"
        );
    }
}

/// The configuration file (`intake::config`), as `sealcast` reads one: whatever parses is
/// valid (every value in range, a usable ladder), and validating it again agrees.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = intake::config::Config::parse(text) {
        assert!(config.validate().is_ok());
        assert!(config.ingest.end_grace().is_ok());
        assert!(!config.ladder.rungs.is_empty());
    }
}

/// Every name and small value parsed from a URL, a topic or a configuration: public and
/// internal paths, MQTT topics, broker addresses, key and session ids, codecs, LL-HLS
/// playlist queries. What parses displays as something that parses to the same value.
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = PublicPath::parse(&text);
    // The load balancer's quick classification agrees with the full parser.
    let class = domain::paths::PathClass::of(&text);
    match &parsed {
        Some(PublicPath::Health) => assert_eq!(class, domain::paths::PathClass::Health),
        Some(PublicPath::Metrics) => assert_eq!(class, domain::paths::PathClass::NodePrivate),
        Some(PublicPath::Master(_) | PublicPath::Media(..)) => {
            assert_eq!(class, domain::paths::PathClass::LivePlaylist);
        }
        Some(_) => assert_eq!(class, domain::paths::PathClass::Other),
        None => assert!(matches!(
            class,
            domain::paths::PathClass::Other | domain::paths::PathClass::NodePrivate
        )),
    }
    if let Some(p) = parsed {
        assert_eq!(PublicPath::parse(&p.to_string()), Some(p));
    }
    if let Some(t) = domain::topics::Topic::parse(&text) {
        assert_eq!(domain::topics::Topic::parse(&t.to_string()), Some(t));
    }
    let _ = text.parse::<domain::broker::BrokerAddress>();
    if let Ok(k) = text.parse::<domain::wire::KeyId>() {
        assert_eq!(k.to_string(), text);
    }
    if let Ok(s) = text.parse::<domain::SessionId>() {
        assert_eq!(s.to_string(), text);
    }
    if let Ok(c) = text.parse::<domain::Codecs>() {
        assert_eq!(c.as_str(), text);
    }
    let _ = domain::hls::PlaylistQuery::parse(&text);
}

/// Enhanced RTMP tag bodies (extended video and audio headers, ModEx, multitrack): what
/// parses as a frame or a configuration is a slice of the input, and the default track of
/// a multitrack message is found whatever its neighbours say.
pub fn ertmp(data: &[u8]) {
    use container::{AudioTag, VideoTag};
    let body = Bytes::copy_from_slice(data);
    for first in [None, Some(0x90u8), Some(0x96), Some(0x97)] {
        let body = match first {
            None => body.clone(),
            Some(b) => {
                let mut v = vec![b];
                v.extend_from_slice(data);
                Bytes::from(v)
            }
        };
        match container::parse_video_tag(&body) {
            Ok(VideoTag::CodedFrames { data: frame, .. }) => {
                assert!(frame.len() < body.len(), "a frame longer than its message")
            }
            Ok(VideoTag::SequenceStart { config, .. }) => {
                assert!(
                    config.len() < body.len(),
                    "a record longer than its message"
                )
            }
            _ => {}
        }
        let mut audio = body.to_vec();
        if let Some(b) = audio.first_mut() {
            *b = 0x90 | (*b & 0x0F);
        }
        if let Ok(AudioTag::CodedFrames { data: frames, .. }) =
            container::parse_audio_tag(&Bytes::from(audio))
        {
            assert!(frames.len() < body.len(), "audio longer than its message");
        }
    }
}

/// MPEG-TS as an SRT publisher sends it: the bounded demuxer and the conversion into
/// pipeline input, fed in pieces of every size a network might deliver.
pub fn mpegts(data: &[u8]) {
    let mut inputs = intake::srt::TsInputs::new();
    let mut out = Vec::new();
    let piece = 1 + usize::from(data.first().copied().unwrap_or(0)) * 7;
    for chunk in data.chunks(piece) {
        let _ = inputs.push(chunk, &mut out);
    }
    let _ = inputs.finish(&mut out);
    for input in out {
        if let intake::media::MediaInput::Video { data: frame, .. } = input {
            assert!(frame.len() <= data.len() * 2 + 64, "video out of nothing");
        }
    }
}

/// The configuration records and headers of the codecs E-RTMP and SRT bring (HEVC, AV1,
/// VP9): records we write parse back to what they were written from, and no conversion
/// of a frame panics.
pub fn video_config(data: &[u8]) {
    use container::{av1, hevc, vp9};
    if let Ok(config) = hevc::HevcConfig::parse(data) {
        let _ = config.codec_string();
        let _ = config.dimensions();
        let mut out = Vec::new();
        let _ = hevc::to_annexb(&config, data, &mut out);
        if let Ok(record) = config.record() {
            let again = hevc::HevcConfig::parse(&record).expect("our record parses");
            assert_eq!(again.sps, config.sps, "a record that changed its SPS");
        }
    }
    let _ = hevc::HevcConfig::from_annexb(data);
    let _ = hevc::HevcSps::parse(data);
    let mut out = Vec::new();
    let _ = hevc::annexb_to_hvcc(data, &mut out);
    if let Ok(config) = av1::Av1Config::parse(&Bytes::copy_from_slice(data)) {
        let _ = config.codec_string();
        let _ = config.dimensions(data);
    }
    let _ = av1::SequenceHeader::parse(data);
    let mut out = Vec::new();
    let _ = av1::to_sample(data, &mut out);
    if let Ok(config) = vp9::Vp9Config::parse(data) {
        let again = vp9::Vp9Config::parse(&config.vpcc()).expect("our vpcC parses");
        assert_eq!(again, config, "a vpcC that changed");
    }
    let _ = vp9::keyframe_dimensions(data);
}

/// Part-key delegations as edges take them from the statement topic and viewers from
/// `{seq}.partkey`: the strict decoder either refuses or yields a statement that encodes
/// back to the very bytes it came from.
pub fn part_key(data: &[u8]) {
    if let Ok(statement) = domain::wire::PartKeyStatement::decode(data) {
        assert_eq!(statement.encode(), data, "a part-key statement re-encodes");
    }
    let _ = certs::signing::Delegation::decode(data);
}

/// The fixed playback key the `playback_token` target checks tokens under.
const FUZZ_PLAYBACK_KEY: [u8; certs::tokens::PLAYBACK_KEY_LEN] = [0x5a; 32];

/// Playback tokens as a private stream's requests carry them (`?token=`, the whole query
/// too): never a panic; a token that verifies has claims that a token minted from them
/// carries again.
pub fn playback_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = certs::tokens::query_token(Some(text));
    let Ok(key) = certs::tokens::PlaybackKey::new(&FUZZ_PLAYBACK_KEY) else {
        return;
    };
    if let Ok(claims) = key.verify(text, 1_800_000_000) {
        let again = key.mint(&claims);
        assert_eq!(key.verify(&again, 1_800_000_000).ok(), Some(claims));
    }
}

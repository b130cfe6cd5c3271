//! The internal push protocol between an ingest and a broadcast node, built and parsed in
//! one place. Segment bytes travel here; their signatures travel over MQTT
//! ([`crate::wire`], [`crate::topics`]).
//!
//! | request | what |
//! |---|---|
//! | `PUT /internal/v1/segments/{stream}/{rendition}/{seq}` | a segment's bytes, or none and [`ASSEMBLE_HEADER`]; its metadata in the `x-sealcast-*` headers of [`SegmentHeaders`] |
//! | `PUT /internal/v1/parts/{stream}/{rendition}/{seq}/{part}` | an LL-HLS part's bytes; its metadata in the headers of [`PartHeaders`] |
//! | `PUT /internal/v1/thumbnails/{stream}` | a thumbnail's JPEG; its signed statement in [`STATEMENT_HEADER`] (hex of [`crate::wire::SignedThumbnail::encode`]), the only metadata it has |
//! | `POST /internal/v1/events` | a [`ControlEvent`] as JSON, in a statement the ingest signed ([`crate::wire::SignedEvent`]) |
//!
//! Every request carries `authorization: Bearer <push token>`; the token lets bytes in to
//! be verified, nothing more. A segment pushed while a
//! node catches up with the live window (late join, resync) also carries its signed
//! statement in [`STATEMENT_HEADER`] (hex of [`crate::wire::SignedMedia::encode`]),
//! because the MQTT message went out before the node subscribed; it is verified exactly
//! like one that came over MQTT.
//!
//! With LL-HLS parts, a CMAF segment's bytes are its parts' bytes joined, after the
//! segment's own C2PA VSI `emsg` when it is signed (`c2pa::vsi::segment_prefix`), and
//! every part was pushed already: a segment push may then carry only that prefix as its
//! body (at most [`Assemble::MAX_PREFIX`] bytes, often none) and [`ASSEMBLE_HEADER`]
//! ([`Assemble`]), and the node makes the segment's bytes from the prefix and the parts
//! `0..N` of it that it holds. Those bytes are only a candidate, like pushed ones: the
//! segment is published once its own signed statement (over MQTT) agrees with their
//! length and digest. A node that does not hold every one of those parts answers `409`
//! with [`PARTS_MISSING_BODY`] ([`is_parts_missing`]), and the ingest pushes the whole
//! segment at once.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    DomainError, LiveEvent, NodeId, PartMeta, RenditionName, SegmentMeta, SessionId, StreamName,
};

/// The prefix of every internal path; public paths never start with it, and a load
/// balancer must not forward it.
pub const INTERNAL_PREFIX: &str = "/internal/";

/// Header carrying a segment's signed statement ([`crate::wire::SignedMedia`], lowercase
/// hex) on a catch-up push. The header keeps the old word, `manifest`; it is wire.
pub const STATEMENT_HEADER: &str = "x-sealcast-manifest";
/// Publish session of a pushed segment (decimal).
pub const SESSION_HEADER: &str = "x-sealcast-session";
/// Discontinuity sequence of a pushed segment (decimal).
pub const DISCONTINUITY_SEQUENCE_HEADER: &str = "x-sealcast-discontinuity-sequence";
/// `1` for the first segment after a reconnect, else `0`.
pub const DISCONTINUITY_HEADER: &str = "x-sealcast-discontinuity";
/// Duration of a pushed segment in microseconds (decimal).
pub const DURATION_HEADER: &str = "x-sealcast-duration-us";
/// Presentation time of a pushed segment's first frame in 90 kHz ticks (decimal).
pub const START_PTS_HEADER: &str = "x-sealcast-start-pts";
/// `1` for a part that starts with a keyframe, else `0`.
pub const INDEPENDENT_HEADER: &str = "x-sealcast-independent";
/// When a part's first frame was captured, Unix milliseconds (decimal).
pub const PROGRAM_DATE_TIME_HEADER: &str = "x-sealcast-program-date-time-ms";

/// Header of an assembled segment push: the segment is the push's body and the node's
/// parts `0..N` of it, joined (decimal `N`, see [`Assemble`]).
pub const ASSEMBLE_HEADER: &str = "x-sealcast-assemble-parts";
/// What a node answers (with `409 Conflict`) to a bodiless segment push when it does not
/// hold every part named: the ingest then pushes the whole segment.
pub const PARTS_MISSING_BODY: &str = r#"{"error":"parts_missing"}"#;

/// Whether a push's answer is [`PARTS_MISSING_BODY`] with `409`: the node could not
/// assemble the segment and wants its bytes. Any other `409` is a refusal.
pub fn is_parts_missing(status: u16, body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Answer<'a> {
        error: &'a str,
    }
    status == 409
        && serde_json::from_slice::<Answer<'_>>(body).is_ok_and(|a| a.error == "parts_missing")
}

/// The assembled form of a segment push ([`ASSEMBLE_HEADER`]): the segment is the push's
/// body (its prefix, at most [`Assemble::MAX_PREFIX`] bytes) and parts `0..parts` of it,
/// joined. Sent only to a node that took every one of those parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assemble {
    /// How many parts the segment has (at least 1, at most [`Assemble::MAX_PARTS`]).
    pub parts: u32,
}

impl Assemble {
    /// Most parts a segment may be assembled from (a 0.33 s part target makes 6 of a 2 s
    /// segment; a segment is cut at most a minute long).
    pub const MAX_PARTS: u32 = 1024;

    /// The largest body of an assembled push: a segment's VSI `emsg` (about 350 bytes).
    pub const MAX_PREFIX: usize = 4096;

    /// The form for a segment of `parts` parts, if it can be sent.
    pub fn new(parts: u32) -> Option<Self> {
        (1..=Self::MAX_PARTS)
            .contains(&parts)
            .then_some(Assemble { parts })
    }

    /// Name and value of its header.
    pub fn pair(&self) -> (&'static str, String) {
        (ASSEMBLE_HEADER, self.parts.to_string())
    }

    /// Reads the header through `get`: `None` when absent (a push with a body), the form
    /// when it is plain decimal within range, else the error.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Option<Self>, BadHeader> {
        let Some(value) = get(ASSEMBLE_HEADER) else {
            return Ok(None);
        };
        parse_decimal(value)
            .and_then(|n| u32::try_from(n).ok())
            .and_then(Self::new)
            .map(Some)
            .ok_or(BadHeader(ASSEMBLE_HEADER))
    }
}

/// A path of the internal push API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InternalPath {
    /// `/internal/v1/segments/{stream}/{rendition}/{seq}`
    Segment(StreamName, RenditionName, u64),
    /// `/internal/v1/parts/{stream}/{rendition}/{seq}/{part}`
    Part(StreamName, RenditionName, u64, u32),
    /// `/internal/v1/thumbnails/{stream}`
    Thumbnail(StreamName),
    /// `/internal/v1/events`
    Events,
}

impl InternalPath {
    /// Parses exactly the shapes above (no query string); anything else, `..` included, is
    /// `None`.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix(INTERNAL_PREFIX)?.strip_prefix("v1/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["events"] => Some(Self::Events),
            ["thumbnails", stream] => Some(Self::Thumbnail(StreamName::new(*stream).ok()?)),
            ["segments", stream, rendition, seq] => Some(Self::Segment(
                StreamName::new(*stream).ok()?,
                RenditionName::new(*rendition).ok()?,
                parse_decimal(seq)?,
            )),
            ["parts", stream, rendition, seq, part] => Some(Self::Part(
                StreamName::new(*stream).ok()?,
                RenditionName::new(*rendition).ok()?,
                parse_decimal(seq)?,
                u32::try_from(parse_decimal(part)?).ok()?,
            )),
            _ => None,
        }
    }
}

impl fmt::Display for InternalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Segment(s, r, n) => write!(f, "/internal/v1/segments/{s}/{r}/{n}"),
            Self::Part(s, r, n, p) => write!(f, "/internal/v1/parts/{s}/{r}/{n}/{p}"),
            Self::Thumbnail(s) => write!(f, "/internal/v1/thumbnails/{s}"),
            Self::Events => f.write_str("/internal/v1/events"),
        }
    }
}

/// Plain decimal digits only (no sign, no spaces), at most 20 of them, fitting a u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What a push's metadata headers describe: a segment ([`SegmentMeta`]) or an LL-HLS part
/// ([`PartMeta`]). Both carry five headers, three of them the same (session, discontinuity
/// sequence, duration); they differ in one flag and one time, named here, so that one
/// writer and one strict parser ([`PushHeaders`]) serve both.
pub trait Pushed {
    /// The flag's header: a segment's [`DISCONTINUITY_HEADER`], a part's
    /// [`INDEPENDENT_HEADER`].
    const FLAG_HEADER: &'static str;
    /// The time's header: a segment's [`START_PTS_HEADER`] (90 kHz), a part's
    /// [`PROGRAM_DATE_TIME_HEADER`] (Unix milliseconds).
    const TIME_HEADER: &'static str;

    /// The values its headers carry.
    fn header_values(&self) -> HeaderValues;
}

/// The five values of a push's metadata headers, as [`Pushed`] reads them from a segment's
/// or a part's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderValues {
    /// Publish session.
    pub session: SessionId,
    /// Discontinuity sequence.
    pub discontinuity_sequence: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// A segment's discontinuity flag (first after a reconnect), a part's independent flag
    /// (starts with a keyframe).
    pub flag: bool,
    /// A segment's start presentation time (90 kHz), a part's capture time of its first
    /// frame (Unix milliseconds).
    pub time: u64,
}

/// The metadata headers of a push of `M`: what `M` holds beyond the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushHeaders<M> {
    /// The values, in the names both kinds share.
    pub values: HeaderValues,
    of: PhantomData<fn() -> M>,
}

/// The metadata headers of a segment push.
pub type SegmentHeaders = PushHeaders<SegmentMeta>;
/// The metadata headers of a part push.
pub type PartHeaders = PushHeaders<PartMeta>;

/// Why pushed segment headers were refused: the header's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing or invalid header {0}")]
pub struct BadHeader(pub &'static str);

impl<M: Pushed> PushHeaders<M> {
    /// The headers describing `meta`.
    pub fn of(meta: &M) -> Self {
        PushHeaders {
            values: meta.header_values(),
            of: PhantomData,
        }
    }

    /// Name and value of every header, to set on a request.
    pub fn pairs(&self) -> [(&'static str, String); 5] {
        let v = &self.values;
        [
            (SESSION_HEADER, v.session.0.to_string()),
            (
                DISCONTINUITY_SEQUENCE_HEADER,
                v.discontinuity_sequence.to_string(),
            ),
            (M::FLAG_HEADER, u8::from(v.flag).to_string()),
            (DURATION_HEADER, v.duration_us.to_string()),
            (M::TIME_HEADER, v.time.to_string()),
        ]
    }

    /// Reads the headers through `get` (a header lookup by lowercase name). Strict: every
    /// header present, plain decimal, the flag `0` or `1`.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, BadHeader> {
        let num = |name: &'static str| get(name).and_then(parse_decimal).ok_or(BadHeader(name));
        let flag = match get(M::FLAG_HEADER) {
            Some("0") => false,
            Some("1") => true,
            _ => return Err(BadHeader(M::FLAG_HEADER)),
        };
        Ok(PushHeaders {
            values: HeaderValues {
                session: SessionId(num(SESSION_HEADER)?),
                discontinuity_sequence: num(DISCONTINUITY_SEQUENCE_HEADER)?,
                duration_us: num(DURATION_HEADER)?,
                flag,
                time: num(M::TIME_HEADER)?,
            },
            of: PhantomData,
        })
    }
}

impl Pushed for SegmentMeta {
    const FLAG_HEADER: &'static str = DISCONTINUITY_HEADER;
    const TIME_HEADER: &'static str = START_PTS_HEADER;

    fn header_values(&self) -> HeaderValues {
        HeaderValues {
            session: self.session,
            discontinuity_sequence: self.discontinuity_sequence,
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            flag: self.discontinuity,
            time: self.start_pts_90k,
        }
    }
}

impl Pushed for PartMeta {
    const FLAG_HEADER: &'static str = INDEPENDENT_HEADER;
    const TIME_HEADER: &'static str = PROGRAM_DATE_TIME_HEADER;

    fn header_values(&self) -> HeaderValues {
        HeaderValues {
            session: self.session,
            discontinuity_sequence: self.discontinuity_sequence,
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            flag: self.independent,
            time: self.program_date_time_ms,
        }
    }
}

impl SegmentHeaders {
    /// The segment's metadata, with the names and sequence number from the path.
    pub fn meta(&self, stream: StreamName, rendition: RenditionName, sequence: u64) -> SegmentMeta {
        let v = &self.values;
        SegmentMeta {
            stream,
            rendition,
            session: v.session,
            sequence,
            discontinuity_sequence: v.discontinuity_sequence,
            discontinuity: v.flag,
            duration: Duration::from_micros(v.duration_us),
            start_pts_90k: v.time,
        }
    }
}

impl PartHeaders {
    /// The part's metadata, with the names, sequence number and index from the path.
    pub fn meta(
        &self,
        stream: StreamName,
        rendition: RenditionName,
        sequence: u64,
        index: u32,
    ) -> PartMeta {
        let v = &self.values;
        PartMeta {
            stream,
            rendition,
            session: v.session,
            sequence,
            index,
            discontinuity_sequence: v.discontinuity_sequence,
            independent: v.flag,
            duration: Duration::from_micros(v.duration_us),
            program_date_time_ms: v.time,
        }
    }
}

/// The cluster's push token: what an ingest presents (`authorization: Bearer …`) and a
/// broadcast node checks. A secret: never displayed or debug-printed, compared in constant
/// time.
#[derive(Clone)]
pub struct PushToken(String);

impl PushToken {
    /// Shortest token accepted.
    pub const MIN_LEN: usize = 16;

    /// A token of at least [`PushToken::MIN_LEN`] visible ASCII characters (it travels in an
    /// HTTP header).
    pub fn new(token: impl Into<String>) -> Result<Self, DomainError> {
        let token = token.into();
        let token = token.trim().to_owned();
        if token.len() < Self::MIN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::InvalidPushToken);
        }
        Ok(PushToken(token))
    }

    /// The token itself, to put in a request header.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether an `authorization` header value is `Bearer <this token>`, in constant time
    /// for a given length.
    pub fn authorizes(&self, header: Option<&[u8]>) -> bool {
        use subtle::ConstantTimeEq;
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        bool::from(presented.ct_eq(self.0.as_bytes()))
    }
}

impl fmt::Debug for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushToken(***)")
    }
}

/// What an ingest tells a node besides segments: as JSON, the body of the signed statement
/// ([`crate::wire::EventStatement`]) that is the body of `POST /internal/v1/events`.
/// Every [`LiveEvent`] but a segment, in its own serde form (`{"type": "ended", ...}`), or
/// [`ControlEvent::Synced`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlEvent {
    /// The ingest `ingest` has sent this node everything it holds of the current windows:
    /// once every present ingest has said so, the node reports itself ready.
    Synced {
        /// The ingest node.
        ingest: NodeId,
    },
    /// A live event other than a segment.
    #[serde(untagged)]
    Live(LiveEvent),
}

impl ControlEvent {
    /// The control event carrying `event`, or `None` for a segment or a part (they are
    /// pushed with `PUT`).
    pub fn from_live(event: &LiveEvent) -> Option<Self> {
        match event {
            LiveEvent::Segment(_) | LiveEvent::Part(_) | LiveEvent::Thumbnail(_) => None,
            other => Some(Self::Live(other.clone())),
        }
    }

    /// The live event it carries, or `None` for [`ControlEvent::Synced`].
    pub fn into_live(self) -> Option<LiveEvent> {
        match self {
            Self::Live(LiveEvent::Segment(_) | LiveEvent::Part(_) | LiveEvent::Thumbnail(_))
            | Self::Synced { .. } => None,
            Self::Live(event) => Some(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RenditionInfo;
    use proptest::prelude::*;

    #[test]
    fn rejects_traversal_and_junk() {
        for bad in [
            "/internal/v1/segments/a/b/../1",
            "/internal/v1/segments/../b/1",
            "/internal/v1/segments/a/b/1/",
            "/internal/v1/segments/a/b/-1",
            "/internal/v1/segments/a/b/1.ts",
            "/internal/v1/segments/a/b/99999999999999999999",
            "/internal/v1/segments/a/b",
            "/internal/v1/parts/a/b/1",
            "/internal/v1/parts/a/b/1/4294967296",
            "/internal/v1/parts/a/b/1/-1",
            "/internal/v1/parts/a/b/1/2/",
            "/internal/v2/events",
            "/internal/v1/events/",
            "/live/a/master.m3u8",
        ] {
            assert_eq!(InternalPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn part_headers_round_trip_and_are_strict() {
        let meta = PartMeta {
            stream: StreamName::new("a").expect("valid"),
            rendition: RenditionName::new("src").expect("valid"),
            session: SessionId(7),
            sequence: 3,
            index: 4,
            discontinuity_sequence: 1,
            independent: true,
            duration: Duration::from_micros(333_000),
            program_date_time_ms: 1_800_000_000_000,
        };
        let pairs = PartHeaders::of(&meta).pairs();
        let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let parsed = PartHeaders::parse(get).expect("parses");
        assert_eq!(
            parsed.meta(meta.stream.clone(), meta.rendition.clone(), 3, 4),
            meta
        );
        let bad = PartHeaders::parse(|n| {
            if n == INDEPENDENT_HEADER {
                Some("yes")
            } else {
                get(n)
            }
        });
        assert_eq!(bad, Err(BadHeader(INDEPENDENT_HEADER)));
    }

    #[test]
    fn headers_are_strict() {
        let meta = SegmentMeta {
            stream: StreamName::new("a").expect("valid"),
            rendition: RenditionName::new("src").expect("valid"),
            session: SessionId(7),
            sequence: 3,
            discontinuity_sequence: 1,
            discontinuity: true,
            duration: Duration::from_micros(2_002_000),
            start_pts_90k: 180_000,
        };
        let pairs = SegmentHeaders::of(&meta).pairs();
        let parsed =
            SegmentHeaders::parse(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()))
                .expect("parses");
        assert_eq!(
            parsed.meta(meta.stream.clone(), meta.rendition.clone(), 3),
            meta
        );
        for (name, _) in &pairs {
            // Each header missing, then each with a bad value, is named in the error.
            let missing = SegmentHeaders::parse(|n| {
                (n != *name)
                    .then(|| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()))
                    .flatten()
            });
            assert_eq!(missing, Err(BadHeader(name)));
            let bad = SegmentHeaders::parse(|n| {
                if n == *name {
                    Some("+1")
                } else {
                    pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
                }
            });
            assert_eq!(bad, Err(BadHeader(name)));
        }
    }

    #[test]
    fn push_tokens_are_checked_and_never_shown() {
        assert!(PushToken::new("short").is_err());
        assert!(PushToken::new("with a space in the middle").is_err());
        let t = PushToken::new("0123456789abcdef-token").expect("valid");
        assert!(t.authorizes(Some(b"Bearer 0123456789abcdef-token")));
        assert!(!t.authorizes(Some(b"Bearer 0123456789abcdef-tokeN")));
        assert!(!t.authorizes(Some(b"0123456789abcdef-token")));
        assert!(!t.authorizes(Some(b"Bearer ")));
        assert!(!t.authorizes(None));
        assert!(!format!("{t:?}").contains("token"));
    }

    #[test]
    fn control_events_refuse_unknown_shapes() {
        for bad in [
            r#"{"type":"segment"}"#,
            r#"{"type":"ended","stream":"a"}"#,
            r#"{"type":"ended","stream":"../a","session":1}"#,
            r#"{"type":"ended","stream":"a","session":1,"extra":0}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<ControlEvent>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_missing_is_told_from_other_conflicts() {
        assert!(is_parts_missing(409, PARTS_MISSING_BODY.as_bytes()));
        assert!(is_parts_missing(409, br#"{ "error": "parts_missing" }"#));
        assert!(!is_parts_missing(200, PARTS_MISSING_BODY.as_bytes()));
        assert!(!is_parts_missing(409, br#"{"error":"stale session"}"#));
        assert!(!is_parts_missing(409, b"parts_missing"));
        assert!(!is_parts_missing(409, b""));
    }

    #[test]
    fn assemble_header_is_strict() {
        let absent = Assemble::parse(|_| None);
        assert_eq!(absent, Ok(None));
        for bad in ["0", "", "+3", "-1", "1025", "4294967297", "3 ", "x"] {
            let parsed = Assemble::parse(|n| (n == ASSEMBLE_HEADER).then_some(bad));
            assert_eq!(parsed, Err(BadHeader(ASSEMBLE_HEADER)), "{bad:?}");
        }
        assert_eq!(Assemble::new(0), None);
        assert_eq!(Assemble::new(Assemble::MAX_PARTS + 1), None);
    }

    proptest! {
        #[test]
        fn assemble_round_trips(parts in 1u32..=Assemble::MAX_PARTS) {
            let form = Assemble::new(parts).expect("in range");
            let (name, value) = form.pair();
            let parsed = Assemble::parse(|n| (n == name).then_some(value.as_str()));
            prop_assert_eq!(parsed, Ok(Some(form)));
        }

        #[test]
        fn assemble_parse_never_panics(value in ".{0,24}") {
            let parsed = Assemble::parse(|n| (n == ASSEMBLE_HEADER).then_some(value.as_str()));
            if let Ok(Some(form)) = parsed {
                prop_assert_eq!(form.pair().1, value);
            }
        }

        #[test]
        fn paths_round_trip(
            s in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}",
            r in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}",
            n in any::<u64>(),
            part in any::<u32>(),
            which in 0u8..4,
        ) {
            let s = StreamName::new(s).expect("valid");
            let r = RenditionName::new(r).expect("valid");
            let p = match which {
                0 => InternalPath::Events,
                3 => InternalPath::Thumbnail(s),
                1 => InternalPath::Segment(s, r, n),
                _ => InternalPath::Part(s, r, n, part),
            };
            prop_assert_eq!(InternalPath::parse(&p.to_string()), Some(p));
        }

        #[test]
        fn parse_never_panics(s in ".{0,120}") {
            let _ = InternalPath::parse(&s);
        }

        #[test]
        fn control_events_round_trip(session in any::<u64>(), kind in 0u8..5) {
            let stream = StreamName::new("s").expect("valid");
            let e = match kind {
                0 => ControlEvent::Live(LiveEvent::SessionStarted {
                    stream,
                    session: SessionId(session),
                    private: session % 3 == 0,
                    record: session % 5 != 0,
                }),
                1 => ControlEvent::Live(LiveEvent::Rendition {
                    stream,
                    info: RenditionInfo {
                        name: RenditionName::new("720p").expect("valid"),
                        width: 1280,
                        height: 720,
                        frame_rate: 29.97,
                        codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
                        init: (session % 2 == 0).then(|| {
                            crate::InitSegment::new(bytes::Bytes::from(session.to_be_bytes().to_vec()))
                                .expect("small")
                        }),
                        part_target_us: (session % 2 == 0).then_some(333_000),
                    },
                }),
                2 => ControlEvent::Live(LiveEvent::RenditionDropped {
                    stream,
                    rendition: RenditionName::new("360p").expect("valid"),
                }),
                3 => ControlEvent::Live(LiveEvent::Ended { stream, session: SessionId(session) }),
                _ => ControlEvent::Synced { ingest: NodeId::new("ingest1").expect("valid") },
            };
            let json = serde_json::to_string(&e).expect("encodes");
            prop_assert_eq!(serde_json::from_str::<ControlEvent>(&json).expect("decodes"), e.clone());
            if let Some(live) = e.clone().into_live() {
                prop_assert_eq!(ControlEvent::from_live(&live), Some(e));
            }
        }
    }
}

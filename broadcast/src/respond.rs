//! Turning a [`Document`] into a response for one request: content type, validators,
//! `If-None-Match` → 304, and single byte ranges → 206 / 416.
//!
//! HEAD needs nothing here: axum answers HEAD with the GET response's headers (including
//! `Content-Length`) and no body.

use std::ops::RangeInclusive;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::view::Document;
use crate::BroadcastError;

/// The header on every segment a node serves, live or recorded: `true`, because a node
/// publishes (and so records) a segment only after the signature gate verified it. A
/// player can read it (it is CORS-exposed) to show that what it plays was verified.
pub const VERIFIED_HEADER: http::HeaderName = http::HeaderName::from_static("x-sealcast-verified");
const VERIFIED: HeaderValue = HeaderValue::from_static("true");

/// Marks a segment response (200, 206 or 304) as verified by the gate. Here, beside the
/// other response rules, so that the live tree and the router both call it and neither
/// calls the other.
pub(crate) fn verified(mut response: Response) -> Result<Response, BroadcastError> {
    response.headers_mut().insert(VERIFIED_HEADER, VERIFIED);
    Ok(response)
}

/// `Content-Type` of playlists.
pub(crate) const PLAYLIST_TYPE: HeaderValue =
    HeaderValue::from_static("application/vnd.apple.mpegurl");
/// `Content-Type` of MPEG-TS segments.
pub(crate) const SEGMENT_TYPE: HeaderValue = HeaderValue::from_static("video/mp2t");
/// `Content-Type` of CMAF init segments, fragments and parts.
pub(crate) const MP4_TYPE: HeaderValue = HeaderValue::from_static("video/mp4");
/// Content type of a thumbnail.
pub(crate) const JPEG_TYPE: HeaderValue = HeaderValue::from_static("image/jpeg");
/// `Content-Type` of signed statements (`.sig`, `.partkey`) and the trust material: bytes
/// for the player's own decoder, never anything a browser would render.
pub(crate) const STATEMENT_TYPE: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// Whether byte ranges are served for a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ranges {
    /// Playlists: small and changing, always sent whole.
    No,
    /// Segments: immutable, so a range of one is stable.
    Bytes,
}

/// Builds the response to a GET (or HEAD) of `doc`.
pub(crate) fn document(
    doc: &Document,
    content_type: HeaderValue,
    ranges: Ranges,
    request: &HeaderMap,
) -> Result<Response, BroadcastError> {
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ETAG, doc.etag.clone())
        .header(header::CACHE_CONTROL, doc.cache_control.clone());
    if ranges == Ranges::Bytes {
        builder = builder.header(header::ACCEPT_RANGES, "bytes");
    }

    if none_match(request, &doc.etag) {
        return Ok(finish(
            builder.status(StatusCode::NOT_MODIFIED),
            Body::empty(),
        ));
    }

    let len = doc.body.len() as u64;
    let range = match ranges {
        Ranges::Bytes if if_range_holds(request, &doc.etag) => request
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map_or(RangeOutcome::Whole, |v| parse_range(v, len)),
        _ => RangeOutcome::Whole,
    };
    match range {
        RangeOutcome::Whole => Ok(finish(builder, Body::from(doc.body.clone()))),
        RangeOutcome::Part(r) => {
            let (start, end) = (*r.start(), *r.end());
            let content_range = format!("bytes {start}-{end}/{len}");
            // In bounds by construction of `parse_range`; `slice` shares, never copies.
            let part = doc.body.slice(to_usize(start)..=to_usize(end));
            Ok(finish(
                builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(header::CONTENT_RANGE, content_range),
                Body::from(part),
            ))
        }
        RangeOutcome::Unsatisfiable => Err(BroadcastError::RangeNotSatisfiable { len }),
    }
}

fn finish(builder: http::response::Builder, body: Body) -> Response {
    // Every header above is a valid value by construction, so the builder cannot fail;
    // should it, a bare 500 is better than a panic.
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `If-None-Match` (weak comparison, as RFC 9110 §13.1.2 asks): `*` or any listed tag.
fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = strip_weak(etag.to_str().unwrap_or_default());
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || strip_weak(tag) == ours)
}

fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// `If-Range` with an entity tag (strong comparison): the range applies only if the client
/// still holds this very representation. Dates are not used as validators here, so a date
/// never matches and the whole body is sent, which is always correct.
fn if_range_holds(request: &HeaderMap, etag: &HeaderValue) -> bool {
    match request.get(header::IF_RANGE) {
        None => true,
        Some(v) => v.as_bytes() == etag.as_bytes(),
    }
}

/// What a `Range` header asks of a body of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// No usable range (absent, malformed, another unit, several ranges): send it all,
    /// which RFC 9110 §14.2 allows.
    Whole,
    /// One satisfiable range, inclusive, within the body.
    Part(RangeInclusive<u64>),
    /// Well-formed, but no byte of the body is in it.
    Unsatisfiable,
}

/// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a body of `len`
/// bytes.
pub(crate) fn parse_range(header: &str, len: u64) -> RangeOutcome {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Whole;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return RangeOutcome::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first, last) {
        // bytes=-n: the last n bytes.
        ("", n) => match number(n) {
            None => RangeOutcome::Whole,
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if len == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Part(len.saturating_sub(n)..=len - 1),
        },
        // bytes=a-: from a to the end.
        (a, "") => match number(a) {
            None => RangeOutcome::Whole,
            Some(a) if a >= len => RangeOutcome::Unsatisfiable,
            Some(a) => RangeOutcome::Part(a..=len - 1),
        },
        // bytes=a-b
        (a, b) => match (number(a), number(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= len {
                    RangeOutcome::Unsatisfiable
                } else {
                    RangeOutcome::Part(a..=b.min(len - 1))
                }
            }
            _ => RangeOutcome::Whole,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse_range("bytes=0-3", 10), RangeOutcome::Part(0..=3));
        assert_eq!(parse_range("bytes=4-", 10), RangeOutcome::Part(4..=9));
        assert_eq!(parse_range("bytes=-3", 10), RangeOutcome::Part(7..=9));
        assert_eq!(parse_range("bytes=-30", 10), RangeOutcome::Part(0..=9));
        assert_eq!(parse_range("bytes=5-100", 10), RangeOutcome::Part(5..=9));
    }

    #[test]
    fn refuses_what_no_byte_satisfies() {
        assert_eq!(parse_range("bytes=10-", 10), RangeOutcome::Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), RangeOutcome::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), RangeOutcome::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeOutcome::Unsatisfiable);
    }

    #[test]
    fn ignores_what_it_does_not_understand() {
        for h in [
            "items=0-1",
            "bytes=3-1",
            "bytes=0-1,4-5",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1",
        ] {
            assert_eq!(parse_range(h, 10), RangeOutcome::Whole, "{h}");
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = HeaderValue::from_static("\"abc\"");
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, &etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(none_match(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abcd\""));
        assert!(!none_match(&h, &etag));
    }

    proptest! {
        #[test]
        fn a_part_is_always_inside_the_body(h in "bytes=[0-9]{0,4}-[0-9]{0,4}", len in 0u64..5000) {
            if let RangeOutcome::Part(r) = parse_range(&h, len) {
                prop_assert!(r.start() <= r.end());
                prop_assert!(*r.end() < len);
            }
        }

        #[test]
        fn never_panics(h in ".{0,40}", len in any::<u64>()) {
            let _ = parse_range(&h, len);
        }
    }
}

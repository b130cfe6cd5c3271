//! The live tree of the public URL layout (`/live/...`), served from the current
//! snapshots: master and media playlists, segments (`{seq}.ts` for MPEG-TS renditions,
//! `{seq}.m4s` for CMAF ones, 404 for the other), `init.mp4`, LL-HLS parts, and the
//! stream's latest verified thumbnail (`thumbnail.jpg`, `thumbnail.jpg.sig`).
//!
//! Blocking playlist reload (RFC 8216bis §6.2.5.2): a media playlist request with
//! `_HLS_msn` (and `_HLS_part`) is answered as soon as the snapshot lists what it asks for.
//! A request for a part that may yet come is held likewise until the part exists: the one
//! the preload hint names, those after it up to the end of the next segment (another edge,
//! or the playlist a cache in front holds, may be a part or two ahead of this node), and
//! the next part of the last complete segment while its parts held do not add up to it
//! (its push came after the segment's, as it may on any edge).
//! Held requests cost a `watch` receiver each, of their rendition's channel (bumped by a
//! snapshot swap that replaced that rendition's view, and subscribed to before the
//! snapshot is looked at, so no swap is missed): no task, thread or buffer per waiter, and
//! a wake-up only when what they wait for may have come. They give up after three target
//! durations (503).
//!
//! Every answer says how long a shared cache in front may keep it (docs/architecture.md,
//! Caching): what a document carries (`view`), except a blocking reload's answer, kept
//! six part targets under its full URL, and the errors `error` maps (a part that will
//! never exist, told apart here from one that may yet come).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use domain::hls::{Answer, LlWindow, PlaylistQuery};
use domain::paths::{MediaFile, PublicPath};
use domain::segment::SegmentFormat;
use domain::{RenditionName, StreamName};
use http::HeaderMap;

use crate::respond::{
    self, Ranges, JPEG_TYPE, MP4_TYPE, PLAYLIST_TYPE, SEGMENT_TYPE, STATEMENT_TYPE,
};
use crate::view::{live_max_age, Document, RenditionView, StreamView, SEGMENT_CACHE_CONTROL};
use crate::{BroadcastError, Node};

/// How many target durations a blocking request is held at most.
const HOLD_TARGETS: u32 = 3;

pub(crate) async fn live(
    State(node): State<Arc<Node>>,
    request: Request,
) -> Result<Response, BroadcastError> {
    // Borrowed from the request: the hot path copies no header map.
    let headers = request.headers();
    match PublicPath::parse(request.uri().path()) {
        Some(PublicPath::Master(stream)) => {
            let view = snapshot(&node, &stream)?;
            let master = view
                .master
                .as_ref()
                .ok_or(BroadcastError::NotReady { stream })?;
            respond::document(master, PLAYLIST_TYPE, Ranges::No, headers)
        }
        Some(PublicPath::Media(stream, rendition)) => {
            media(&node, stream, rendition, request.uri().query(), headers).await
        }
        Some(PublicPath::Segment(stream, rendition, sequence)) => {
            let at = (stream, rendition, sequence);
            match segment(&node, at.clone(), SegmentFormat::Ts, headers) {
                Err(e) if past_the_window(&e) => {
                    time_shifted(&node, at, MediaFile::Ts(sequence), headers)
                        .await?
                        .ok_or(e)
                }
                answer => answer,
            }
        }
        Some(PublicPath::Fragment(stream, rendition, sequence)) => {
            let at = (stream, rendition, sequence);
            match segment(&node, at.clone(), SegmentFormat::Cmaf, headers) {
                Err(e) if past_the_window(&e) => {
                    let media = MediaFile::Fragment(sequence);
                    time_shifted(&node, at, media, headers).await?.ok_or(e)
                }
                answer => answer,
            }
        }
        Some(PublicPath::DvrMaster(stream)) => {
            let dvr = node.dvr();
            let text = dvr.as_ref().and_then(|d| d.master_playlist(&stream));
            let text = text.ok_or(BroadcastError::UnknownStream { stream })?;
            let doc = Document::playlist(text, live_max_age(1));
            respond::document(&doc, PLAYLIST_TYPE, Ranges::No, headers)
        }
        Some(PublicPath::DvrMedia(stream, rendition)) => {
            let dvr = node.dvr();
            let text = dvr
                .as_ref()
                .and_then(|d| d.media_playlist(&stream, &rendition));
            let text = text.ok_or(BroadcastError::UnknownStream { stream })?;
            let target = node.config().segment_target.as_secs();
            let doc = Document::playlist(text, live_max_age(target));
            respond::document(&doc, PLAYLIST_TYPE, Ranges::No, headers)
        }
        Some(PublicPath::Init(stream, rendition)) => {
            let view = snapshot(&node, &stream)?;
            let r = rendition_of(&view, &stream, &rendition)?;
            let init = r.init.as_ref().ok_or(BroadcastError::NotFound)?;
            // Verified too: it came inside the signed rendition description.
            respond::verified(respond::document(init, MP4_TYPE, Ranges::Bytes, headers)?)
        }
        Some(PublicPath::Part(stream, rendition, sequence, part)) => {
            let doc = wait_for(&node, (&stream, &rendition), |view| {
                let r = rendition_of(view, &stream, &rendition)?;
                if let Some(doc) = r.part(sequence, part) {
                    return Ok(Some(doc.clone()));
                }
                if may_come(r, sequence, part) {
                    return Ok(None);
                }
                Err(BroadcastError::UnknownPart {
                    stream: stream.clone(),
                    rendition: rendition.clone(),
                    sequence,
                    part,
                    gone: is_gone(r.ll.as_ref(), sequence),
                })
            })
            .await?;
            respond::verified(respond::document(&doc, MP4_TYPE, Ranges::Bytes, headers)?)
        }
        Some(PublicPath::Signature(stream, rendition, media)) => {
            let at = (stream, rendition);
            let doc = match statement(&node, at.clone(), media).await {
                Err(BroadcastError::NotFound)
                    if matches!(media, MediaFile::Ts(_) | MediaFile::Fragment(_)) =>
                {
                    Arc::new(time_shifted_statement(&node, at, media).await?)
                }
                found => found?,
            };
            respond::document(&doc, STATEMENT_TYPE, Ranges::No, headers)
        }
        Some(PublicPath::MoqGrant(stream)) => {
            crate::moq::grant(&node, &stream, request.uri().query())
        }
        Some(PublicPath::Thumbnail(stream)) => {
            let held = node
                .thumbnails()
                .latest(&stream)
                .ok_or(BroadcastError::NotFound)?;
            respond::document(&held.image, JPEG_TYPE, Ranges::No, headers)
        }
        Some(PublicPath::ThumbnailSignature(stream)) => {
            let held = node
                .thumbnails()
                .latest(&stream)
                .ok_or(BroadcastError::NotFound)?;
            respond::document(&held.signed, STATEMENT_TYPE, Ranges::No, headers)
        }
        Some(PublicPath::PartKey(stream, rendition, sequence)) => {
            let view = snapshot(&node, &stream)?;
            let r = rendition_of(&view, &stream, &rendition)?;
            let doc = r.part_key(sequence).ok_or(BroadcastError::NotFound)?;
            respond::document(doc, STATEMENT_TYPE, Ranges::No, headers)
        }
        _ => Err(BroadcastError::NotFound),
    }
}

/// The signed statement of a live media file (`{file}.sig`): the envelope this node
/// verified for it, from the same snapshot as the file, so the two always belong together.
/// A part's waits like the part while the part may yet come, so that a player may ask for
/// both at once. No `x-sealcast-verified`: it is not media, and it is what lets a
/// viewer check the media without taking the node's word.
async fn statement(
    node: &Node,
    (stream, rendition): (StreamName, RenditionName),
    media: MediaFile,
) -> Result<Arc<Document>, BroadcastError> {
    let signed = |doc: &Document| doc.signed.clone().ok_or(BroadcastError::NotFound);
    if let MediaFile::Part(sequence, part) = media {
        return wait_for(node, (&stream, &rendition), |view| {
            let r = rendition_of(view, &stream, &rendition)?;
            if let Some(doc) = r.part(sequence, part) {
                return signed(doc).map(Some);
            }
            if may_come(r, sequence, part) {
                return Ok(None);
            }
            Err(BroadcastError::NotFound)
        })
        .await;
    }
    let view = snapshot(node, &stream)?;
    let r = rendition_of(&view, &stream, &rendition)?;
    let doc = match media {
        MediaFile::Init => r.init.as_ref(),
        MediaFile::Fragment(n) => r.segment(n).filter(|_| r.format == SegmentFormat::Cmaf),
        MediaFile::Ts(n) => r.segment(n).filter(|_| r.format == SegmentFormat::Ts),
        MediaFile::Part(..) => None,
    };
    doc.ok_or(BroadcastError::NotFound).and_then(signed)
}

/// A media playlist: at once without `_HLS_msn`, else once it lists what is asked for
/// (renditions without LL-HLS answer at once, as servers that cannot block do).
async fn media(
    node: &Node,
    stream: StreamName,
    rendition: RenditionName,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, BroadcastError> {
    let query = match query {
        Some(q) => PlaylistQuery::parse(q).map_err(BroadcastError::BadQuery)?,
        None => PlaylistQuery::default(),
    };
    let r = if query.msn.is_none() {
        let view = snapshot(node, &stream)?;
        Arc::clone(rendition_of(&view, &stream, &rendition)?)
    } else {
        wait_for(node, (&stream, &rendition), |view| {
            let r = rendition_of(view, &stream, &rendition)?;
            match r.ll.as_ref().map_or(Answer::Now, |ll| ll.answer(&query)) {
                Answer::Now => Ok(Some(Arc::clone(r))),
                Answer::Wait => Ok(None),
                Answer::TooFarAhead => Err(BroadcastError::TooFarAhead),
            }
        })
        .await?
    };
    let doc = match (&r.delta, query.skip) {
        (Some(delta), true) => delta,
        _ => &r.playlist,
    };
    let mut response = respond::document(doc, PLAYLIST_TYPE, Ranges::No, headers)?;
    // The answer to a blocking reload (full or delta) is right for every later request of
    // its exact URL: cacheable for longer than the live playlist (docs/architecture.md,
    // Caching).
    if let (Some(_), Some(ll)) = (query.msn, r.ll.as_ref()) {
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            crate::view::blocking_cache_control(ll.part_target()),
        );
    }
    Ok(response)
}

/// Whether a part that is neither held nor may come will never be: its segment is listed
/// whole and its parts held add up to it (or it is older than the last), or the rendition
/// has no parts at all.
fn is_gone(ll: Option<&LlWindow>, sequence: u64) -> bool {
    ll.is_none_or(|ll| ll.last_sequence().is_some_and(|last| sequence <= last))
}

/// A whole segment, in the extension of its rendition's format only.
fn segment(
    node: &Node,
    (stream, rendition, sequence): (StreamName, RenditionName, u64),
    format: SegmentFormat,
    headers: &HeaderMap,
) -> Result<Response, BroadcastError> {
    let view = snapshot(node, &stream)?;
    let r = rendition_of(&view, &stream, &rendition)?;
    let segment = r.segment(sequence).filter(|_| r.format == format).ok_or(
        BroadcastError::UnknownSegment {
            stream,
            rendition,
            sequence,
        },
    )?;
    let content_type = match format {
        SegmentFormat::Ts => SEGMENT_TYPE,
        SegmentFormat::Cmaf => MP4_TYPE,
    };
    respond::verified(respond::document(
        segment,
        content_type,
        Ranges::Bytes,
        headers,
    )?)
}

/// Whether a segment the live window does not hold may be in the time-shift window.
fn past_the_window(e: &BroadcastError) -> bool {
    matches!(
        e,
        BroadcastError::UnknownSegment { .. } | BroadcastError::UnknownRendition { .. }
    )
}

/// A segment the time-shift window lists (`crate::dvr`), from the recording in progress:
/// on this node's disk while it waits for the archive, else the archive. The bytes this
/// node verified and published, as they were served live. `None` when the window does not
/// list it (the live window's answer stands).
async fn time_shifted(
    node: &Node,
    (stream, rendition, sequence): (StreamName, RenditionName, u64),
    media: MediaFile,
    headers: &HeaderMap,
) -> Result<Option<Response>, BroadcastError> {
    let Some((id, bytes)) = recorded(node, (&stream, &rendition), media, false).await? else {
        return Ok(None);
    };
    let content_type = match media {
        MediaFile::Ts(_) => SEGMENT_TYPE,
        _ => MP4_TYPE,
    };
    let doc = Document::segment(id, sequence, bytes);
    respond::verified(respond::document(
        &doc,
        content_type,
        Ranges::Bytes,
        headers,
    )?)
    .map(Some)
}

/// The signed statement of a segment the time-shift window lists, as recorded beside it.
async fn time_shifted_statement(
    node: &Node,
    (stream, rendition): (StreamName, RenditionName),
    media: MediaFile,
) -> Result<Document, BroadcastError> {
    let (_, bytes) = recorded(node, (&stream, &rendition), media, true)
        .await?
        .ok_or(BroadcastError::NotFound)?;
    Ok(Document::statement(bytes, SEGMENT_CACHE_CONTROL))
}

/// A recorded segment (or, with `statement`, its `.sig`) the time-shift window lists, and
/// the id of its recording; `None` when the window does not list it or it is nowhere.
async fn recorded(
    node: &Node,
    (stream, rendition): (&StreamName, &RenditionName),
    media: MediaFile,
    statement: bool,
) -> Result<Option<(domain::SessionId, bytes::Bytes)>, BroadcastError> {
    let (MediaFile::Ts(sequence) | MediaFile::Fragment(sequence)) = media else {
        return Ok(None);
    };
    let Some((id, dir)) = node
        .dvr()
        .and_then(|d| d.locate(stream, rendition, sequence))
    else {
        return Ok(None);
    };
    let mut name = media.to_string();
    if statement {
        name.push_str(crate::recording::STATEMENT_SUFFIX);
    }
    // The recorder removes its copy only once the archive holds it.
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => return Ok(Some((id, bytes::Bytes::from(bytes)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BroadcastError::Recordings(e)),
    }
    let Some(shelf) = node.shelf() else {
        return Ok(None);
    };
    let file = if statement {
        archive::RecordingFile::Statement(rendition.clone(), media)
    } else {
        archive::RecordingFile::Media(rendition.clone(), media)
    };
    Ok(shelf.in_progress(stream, id, file).await?.map(|b| (id, b)))
}

fn snapshot(node: &Node, stream: &StreamName) -> Result<Arc<StreamView>, BroadcastError> {
    node.view(stream)
        .ok_or_else(|| BroadcastError::UnknownStream {
            stream: stream.clone(),
        })
}

fn rendition_of<'a>(
    view: &'a StreamView,
    stream: &StreamName,
    rendition: &RenditionName,
) -> Result<&'a Arc<RenditionView>, BroadcastError> {
    view.renditions
        .get(rendition)
        .ok_or_else(|| BroadcastError::UnknownRendition {
            stream: stream.clone(),
            rendition: rendition.clone(),
        })
}

/// Whether part `index` of segment `sequence`, not held, may come within a hold: the
/// preload-hinted part or one after it up to the end of the segment after the hinted
/// one's, or the next part of the last complete segment while the parts held of it do not
/// make it up (none held yet, or its bytes do not end with theirs joined: a signed CMAF
/// segment is its own C2PA VSI and then its parts). Never once the playlist ended.
fn may_come(r: &RenditionView, sequence: u64, index: u32) -> bool {
    let Some(ll) = r.ll.as_ref().filter(|ll| !ll.is_ended()) else {
        return false;
    };
    let Some(last) = ll.last_sequence() else {
        return false;
    };
    if sequence == last {
        let held: Vec<&[u8]> = r
            .parts
            .iter()
            .filter(|((s, _), _)| *s == last)
            .map(|(_, d)| d.body.as_ref())
            .collect();
        return usize::try_from(index).is_ok_and(|i| i == held.len())
            && r.segment(last)
                .is_some_and(|s| held.is_empty() || !ends_with_joined(&s.body, &held));
    }
    let Some(hinted) = ll.hinted_part() else {
        return false;
    };
    (sequence, index) >= hinted && sequence <= hinted.0.saturating_add(1)
}

/// Whether `whole` ends with `parts` joined, in order.
fn ends_with_joined(whole: &[u8], parts: &[&[u8]]) -> bool {
    let mut end = whole.len();
    for part in parts.iter().rev() {
        let Some(start) = end.checked_sub(part.len()) else {
            return false;
        };
        if whole.get(start..end) != Some(*part) {
            return false;
        }
        end = start;
    }
    true
}

/// Runs `check` against the stream's snapshot now and after every swap that changed the
/// rendition it looks at, until it answers (or fails), for at most three target durations.
async fn wait_for<T>(
    node: &Node,
    (stream, rendition): (&StreamName, &RenditionName),
    mut check: impl FnMut(&StreamView) -> Result<Option<T>, BroadcastError>,
) -> Result<T, BroadcastError> {
    let unknown = || BroadcastError::UnknownStream {
        stream: stream.clone(),
    };
    // Subscribed before the first look: a swap after it wakes the loop below.
    let mut changed = node.subscribe(stream, rendition)?;
    // One timer for the whole hold, not one per wake-up.
    let deadline = tokio::time::sleep(node.config().segment_target * HOLD_TARGETS);
    tokio::pin!(deadline);
    loop {
        changed.borrow_and_update();
        let view = node.view(stream).ok_or_else(unknown)?;
        if let Some(found) = check(&view)? {
            return Ok(found);
        }
        drop(view);
        tokio::select! {
            biased;
            woke = changed.changed() => {
                if woke.is_err() {
                    // The rendition (or the stream) is gone: one last look says how.
                    let view = node.view(stream).ok_or_else(unknown)?;
                    return check(&view)?.ok_or(BroadcastError::NotFound);
                }
            }
            () = &mut deadline => return Err(BroadcastError::BlockTimeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::ends_with_joined;

    #[test]
    fn a_segment_is_its_own_prefix_and_then_its_parts() {
        let parts: [&[u8]; 3] = [b"one", b"two", b"three"];
        assert!(ends_with_joined(b"vsi:onetwothree", &parts));
        assert!(ends_with_joined(b"onetwothree", &parts));
        // The last part not held yet: the segment does not end with those held.
        assert!(!ends_with_joined(b"vsi:onetwothreefour", &parts));
        assert!(!ends_with_joined(b"three", &parts));
        assert!(ends_with_joined(b"anything", &[]));
    }

    proptest! {
        /// The same answer as joining the parts and comparing the end; and every prefix
        /// followed by the parts ends with them.
        #[test]
        fn ends_with_joined_is_ends_with_the_parts_joined(
            whole in proptest::collection::vec(0u8..3, 0..48),
            prefix in proptest::collection::vec(any::<u8>(), 0..16),
            parts in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..8), 0..6),
        ) {
            let held: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let joined: Vec<u8> = parts.concat();
            prop_assert_eq!(ends_with_joined(&whole, &held), whole.ends_with(&joined));
            let made: Vec<u8> = [prefix, joined].concat();
            prop_assert!(ends_with_joined(&made, &held));
        }
    }
}
